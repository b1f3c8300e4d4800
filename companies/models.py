"""Companies, the board (users, memberships, tokens) and the append-only activity log."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from paperclip.ids import PrefixedIdField, parse_id
from paperclip.tenancy import CompanyScopedQuerySet
from paperclip.timestamps import OneClockTimestamps


class User(AbstractUser):
    """A board user: a human who oversees agents. Superusers are the instance's admins."""

    id = PrefixedIdField(prefix="usr")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class CompanyQuerySet(models.QuerySet):
    def by_ref(self, ref: str):
        pk = parse_id(ref, "cmp")
        return self.filter(pk=pk) if pk else self.none()

    def visible_to(self, actor):
        if actor.is_instance_admin:
            return self
        return self.filter(pk__in=actor.company_ids)


class Company(OneClockTimestamps, models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        ARCHIVED = "archived"

    id = PrefixedIdField(prefix="cmp")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # Three letters from the name, made unique with A, AA, ... (DESIGN §5); issues are PREFIX-N.
    issue_prefix = models.CharField(max_length=16, unique=True, editable=False)
    # The last issue number handed out; bumped in the same transaction as the issue insert.
    issue_counter = models.PositiveIntegerField(default=0, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    budget_monthly_cents = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.issue_prefix})"


class Membership(models.Model):
    """A board user's seat in a company. Viewers read; owners and members also write."""

    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"
        VIEWER = "viewer"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "company"], name="membership_unique_seat")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.company} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role != self.Role.VIEWER


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    """`<prefix>` + 48 hex characters: 192 bits, shown once, stored only as a hash."""
    return f"{prefix}{secrets.token_hex(24)}"


class HashedTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class HashedToken(models.Model):
    """A bearer secret shown once: only its SHA-256 and a short prefix (to spot it) are kept."""

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = HashedTokenQuerySet.as_manager()

    class Meta:
        abstract = True


class BoardToken(HashedToken):
    """A board user's personal API token (`pcb_...`), for scripts and the API."""

    id = PrefixedIdField(prefix="tok")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="board_tokens")
    name = models.CharField(max_length=100, default="cli")

    def __str__(self) -> str:
        return f"{self.token_prefix}… ({self.user})"


class ActivityQuerySet(CompanyScopedQuerySet):
    def about_issue(self, issue_id: str):
        return self.filter(issue_id=issue_id)


class ActivityEvent(models.Model):
    """One append-only row per mutation: who did what to which entity, with previous values."""

    id = PrefixedIdField(prefix="act")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="activity")
    actor_type = models.CharField(max_length=16)  # agent | user | system
    actor_id = models.CharField(max_length=32)
    run_id = models.CharField(max_length=64, null=True, blank=True)
    action = models.CharField(max_length=64)
    entity_type = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=32)
    # The issue the row is about (itself, or the issue of its comment/document/attachment).
    # A plain column, not a foreign key: the log outlives what it describes.
    issue_id = models.CharField(max_length=32, null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The row's place in its company's tamper-evident chain and its chained sha256 (hex), both
    # set after commit by `companies.sealing`, never by the write that inserts the row: that
    # INSERT stays one statement taking no lock. Null until sealed.
    seal_seq = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    seal_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One row per place in a chain; also serves the sealer's "last seq of the company"
            # and verify_activity's walk in seq order.
            models.UniqueConstraint(fields=["company", "seal_seq"], name="activity_seal_seq_unique")
        ]
        indexes = [
            # GET /api/companies/{id}/activity, newest first
            models.Index(fields=["company", "-created_at", "-id"], name="activity_company_recent"),
            # GET /api/issues/{id}/activity
            models.Index(fields=["issue_id", "-created_at"], name="activity_issue_recent"),
            # ?agentId= and ?entityType=&entityId= filters
            models.Index(fields=["company", "actor_id"], name="activity_company_actor"),
            models.Index(fields=["entity_type", "entity_id"], name="activity_entity"),
            # The sealer: a company's unsealed rows in (created_at, id) order, and which
            # companies have any; small, since a row leaves it once sealed.
            models.Index(
                fields=["company", "created_at", "id"],
                condition=models.Q(seal_seq__isnull=True),
                name="activity_unsealed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type}:{self.entity_id} by {self.actor_id}"


class IdempotencyKeyQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(expires_at__lte=now or timezone.now())


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` on a POST and the answer it got (DESIGN §9).

    One row per credential owner and key: claimed `running` in the request's transaction before
    the view runs, and `done` with the answer in that same transaction, so the key and what the
    request wrote commit together or not at all. `paperclip.idempotency` reads and writes it; a
    row past `expires_at` counts as absent.
    """

    class State(models.TextChoices):
        RUNNING = "running"
        DONE = "done"

    id = models.BigAutoField(primary_key=True)
    # `<actor type>:<actor id>`: who sent the key (an agent, a board user).
    owner = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    # sha256 of the method, the path and the body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_data = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    # The headers worth replaying (Location, ETag, ...) and `/v1`'s envelope meta.
    response_headers = models.JSONField(default=dict, blank=True)
    response_meta = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    objects = IdempotencyKeyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique_owner")
        ]
        indexes = [
            # Pruning: DELETE ... WHERE expires_at <= now
            models.Index(fields=["expires_at"], name="idempotency_key_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.key} ({self.state})"
