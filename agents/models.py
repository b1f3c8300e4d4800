"""Agents, their API keys, teams and runs."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from companies.models import Company
from paperclip.api.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet

# A chain of command deeper than this is a bug (cycles are refused on write); stop walking.
MAX_CHAIN_DEPTH = 64


class Team(models.Model):
    id = PrefixedIdField(prefix="tm")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "company", name="team_name_unique_per_company")
        ]

    def __str__(self) -> str:
        return self.name


class Agent(ConcurrentTransitionMixin, models.Model):
    class Role(models.TextChoices):
        CEO = "ceo"
        CTO = "cto"
        CMO = "cmo"
        CFO = "cfo"
        ENGINEER = "engineer"
        DESIGNER = "designer"
        PM = "pm"
        QA = "qa"
        DEVOPS = "devops"
        RESEARCHER = "researcher"
        GENERAL = "general"

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        IDLE = "idle"
        RUNNING = "running"
        ERROR = "error"
        PENDING_APPROVAL = "pending_approval"
        TERMINATED = "terminated"

    class Adapter(models.TextChoices):
        PROCESS = "process"
        HTTP = "http"
        CLAUDE_LOCAL = "claude_local"
        CODEX_LOCAL = "codex_local"

    id = PrefixedIdField(prefix="agt")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.GENERAL)
    title = models.CharField(max_length=200, blank=True, default="")
    reports_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    status = FSMField(max_length=32, choices=Status.choices, default=Status.ACTIVE, protected=True)
    capabilities = models.TextField(blank=True, default="")
    adapter_type = models.CharField(max_length=32, choices=Adapter.choices, default=Adapter.PROCESS)
    adapter_config = models.JSONField(default=dict, blank=True)
    permissions = models.JSONField(default=dict, blank=True)
    budget_monthly_cents = models.PositiveIntegerField(default=0)
    spent_monthly_cents = models.PositiveIntegerField(default=0)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # Names are matched case-insensitively (@-mentions), so they are unique that way.
            models.UniqueConstraint(Lower("name"), "company", name="agent_name_unique_per_company")
        ]

    def __str__(self) -> str:
        return self.name

    # An agent is "authenticated" when its API key is presented (see agents.authentication).
    is_authenticated = True
    is_anonymous = False

    @property
    def can_mutate(self) -> bool:
        """Paused, terminated and not-yet-approved agents may read but not change anything."""
        return self.status not in {
            self.Status.PAUSED,
            self.Status.TERMINATED,
            self.Status.PENDING_APPROVAL,
        }

    def chain_of_command(self) -> list[Agent]:
        """Managers from the direct one up to the top (one query per level)."""
        chain: list[Agent] = []
        seen = {self.pk}
        manager = self.reports_to
        while manager is not None and manager.pk not in seen and len(chain) < MAX_CHAIN_DEPTH:
            chain.append(manager)
            seen.add(manager.pk)
            manager = manager.reports_to
        return chain

    def manages(self, other: Agent) -> bool:
        """Whether `other` reports to this agent, directly or through managers."""
        return any(manager.pk == self.pk for manager in other.chain_of_command())

    @transition(
        field=status,
        source=[Status.ACTIVE, Status.IDLE, Status.RUNNING, Status.ERROR],
        target=Status.PAUSED,
        custom={"label": "Pause"},
    )
    def pause(self) -> None:
        """Stop the agent from changing anything; its keys keep read access."""

    @transition(
        field=status, source=Status.PAUSED, target=Status.ACTIVE, custom={"label": "Resume"}
    )
    def resume(self) -> None:
        """Let a paused agent work again."""

    @transition(
        field=status,
        source=[
            Status.ACTIVE,
            Status.PAUSED,
            Status.IDLE,
            Status.RUNNING,
            Status.ERROR,
            Status.PENDING_APPROVAL,
        ],
        target=Status.TERMINATED,
        custom={"label": "Terminate"},
    )
    def terminate(self) -> None:
        """End the agent for good; the service revokes its keys in the same transaction."""


class AgentApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class AgentApiKey(models.Model):
    """An agent's API key (`pcp_` + 48 hex). Only its SHA-256 is stored; the token is shown once."""

    id = PrefixedIdField(prefix="key")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AgentApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "agent API key"

    def __str__(self) -> str:
        return f"{self.token_prefix}… ({self.agent})"


class HeartbeatRun(models.Model):
    """One working session of one agent. Live while queued or running with an unexpired lease."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMED_OUT = "timed_out"

    LIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    class Source(models.TextChoices):
        TIMER = "timer"
        ASSIGNMENT = "assignment"
        ON_DEMAND = "on_demand"
        AUTOMATION = "automation"

    id = PrefixedIdField(prefix="run")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    invocation_source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.ON_DEMAND
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.agent}, {self.status})"

    @property
    def is_live(self) -> bool:
        if self.status not in self.LIVE_STATUSES:
            return False
        return self.lease_expires_at is None or self.lease_expires_at > timezone.now()
