"""Writes for companies, the board and the activity log. Each runs in one transaction."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, models, transaction

from companies.models import (
    ActivityEvent,
    BoardToken,
    Company,
    Membership,
    User,
    hash_token,
    new_secret,
)
from paperclip.access import ensure_board, ensure_instance_admin
from paperclip.actors import Actor
from paperclip.errors import Conflict
from paperclip.events import change_logged
from paperclip.naming import camel

PREFIX_LENGTH = 3


def activity_record(
    *,
    actor: Actor,
    company_id: str,
    action: str,
    entity_type: str,
    entity_id: str,
    issue_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> ActivityEvent:
    """Append one activity row; called by every mutating service inside its transaction."""
    return ActivityEvent.objects.create(
        company_id=company_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        issue_id=issue_id,
        details=details or {},
        **actor.activity_fields(),
    )


def log_change(
    actor: Actor, entity: models.Model, action: str, details: dict[str, Any] | None = None
) -> ActivityEvent:
    """The activity row for a change of `entity` (its company, type, id, and its issue if it
    hangs off one)."""
    company_id = entity.pk if isinstance(entity, Company) else entity.company_id
    activity = activity_record(
        actor=actor,
        company_id=company_id,
        action=action,
        entity_type=getattr(entity, "activity_type", entity._meta.model_name),
        entity_id=entity.pk,
        issue_id=getattr(entity, "issue_id", None),
        details=details,
    )
    change_logged(actor=actor, entity=entity, activity=activity)  # its domain event, if any
    return activity


def _wire_value(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    return value


def apply_changes(instance: models.Model, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set the changed fields on `instance`; answer `{wireName: {"from", "to"}}` for the log.

    Keys are the API's names (`assignee_agent` → `assigneeAgentId`), so the log reads like the
    request that caused it.
    """
    diff = {}
    # A model may keep some values out of the log (an agent's credentials): `logged_value`.
    logged = getattr(instance, "logged_value", lambda name, value: value)
    for name, new in changes.items():
        old = getattr(instance, name)
        if _wire_value(old) != _wire_value(new):
            wire_name = camel(instance._meta.get_field(name).attname)
            diff[wire_name] = {
                "from": logged(name, _wire_value(old)),
                "to": logged(name, _wire_value(new)),
            }
            setattr(instance, name, new)
    return diff


def save_changes(actor: Actor, row: models.Model, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` to a locked row; when anything really changed, save it and log
    `<entity>.updated` with the diff. An edit that changes nothing writes nothing."""
    diff = apply_changes(row, changes)
    if diff:
        row.save()
        entity = getattr(row, "activity_type", row._meta.model_name)
        log_change(actor, row, f"{entity}.updated", {"changes": diff})
    return diff


def derive_issue_prefix(name: str) -> str:
    """Three letters from the name (padded with X), made unique with a number: `ZED`, `ZED2`,
    `ZED3`, ... (DESIGN §5).

    The number is one more than the highest taken, so the prefix grows by a digit per tenfold of
    companies and fits the column (13 digits of room) whatever the count. Prefixes of another
    shape that share the letters (`ZEDA` from older releases) are not ours to count.
    """
    letters = re.sub(r"[^A-Za-z]", "", name).upper()[:PREFIX_LENGTH].ljust(PREFIX_LENGTH, "X")
    numbered = re.compile(rf"{letters}([1-9][0-9]*)?")
    highest = 0
    for taken in Company.objects.filter(issue_prefix__startswith=letters).values_list(
        "issue_prefix", flat=True
    ):
        match = numbered.fullmatch(taken)
        if match:
            highest = max(highest, int(match.group(1) or 1))
    prefix = letters if highest == 0 else f"{letters}{highest + 1}"
    max_length = Company._meta.get_field("issue_prefix").max_length
    if len(prefix) > max_length:  # 10**13 companies with one name: refuse rather than 500
        raise Conflict("No issue prefix left for this name", code="issue_prefix_exhausted")
    return prefix


def company_create(
    *, actor: Actor, name: str, description: str = "", budget_monthly_cents: int = 0
) -> Company:
    """Create a company with a unique issue prefix; the creating board user becomes its owner."""
    ensure_instance_admin(actor)
    for _ in range(5):  # another instance may take the same prefix between our read and insert
        try:
            with transaction.atomic():
                company = Company.objects.create(
                    name=name,
                    description=description,
                    budget_monthly_cents=budget_monthly_cents,
                    issue_prefix=derive_issue_prefix(name),
                )
                if actor.user is not None:
                    Membership.objects.create(
                        user=actor.user, company=company, role=Membership.Role.OWNER
                    )
                activity_record(
                    actor=actor,
                    company_id=company.pk,
                    action="company.created",
                    entity_type="company",
                    entity_id=company.pk,
                    details={"name": name, "issuePrefix": company.issue_prefix},
                )
                return company
        except IntegrityError:
            continue
    raise IntegrityError("could not allocate a unique issue prefix")


@transaction.atomic
def company_update(*, actor: Actor, company: Company, changes: dict[str, Any]) -> Company:
    ensure_board(actor, company.pk)
    company = Company.objects.select_for_update().get(pk=company.pk)
    changes = dict(changes)
    if "budget_monthly_cents" in changes:  # a budget has consequences (DESIGN §10)
        from issues.services.costs import budget_set  # costs build on companies

        budget_set(actor=actor, row=company, cents=changes.pop("budget_monthly_cents"))
        company.refresh_from_db()
    save_changes(actor, company, changes)
    return company


@transaction.atomic
def membership_grant(
    *, user: User, company: Company, role: str = Membership.Role.OWNER
) -> Membership:
    """Give a board user a seat in a company (idempotent; updates the role)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, company=company, defaults={"role": role}
    )
    return membership


@transaction.atomic
def board_token_create(*, user: User, name: str = "cli") -> tuple[BoardToken, str]:
    """Create a personal API token for a board user; the plain token is returned once."""
    token = new_secret("pcb_")
    board_token = BoardToken.objects.create(
        user=user, name=name, token_hash=hash_token(token), token_prefix=token[:12]
    )
    return board_token, token
