"""One verb on many issues (DESIGN §8 bulk, §11 triage): the `/v1` bulk endpoint and the admin's
bulk actions both call `bulk_apply`, so a refusal reads the same from either.

Each issue is one call of the service its verb has on its own (`issue_assign`, `issue_cancel`,
`issue_reassign`; `task_update` for labels and priority), in its own transaction: one refused
issue never undoes another. A dry run makes every call the same way, checks and all, and rolls
each one back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from companies.models import Company
from issues.models import Issue
from issues.services.lifecycle import task_update
from issues.services.verbs import issue_assign, issue_cancel, issue_reassign
from paperclip.actors import Actor
from paperclip.errors import DomainError, NotFound, ValidationFailed, from_fsm
from paperclip.ids import parse_id


def _label(*, actor: Actor, issue: Issue, labels: list[str]) -> Issue:
    return task_update(actor=actor, issue=issue, changes={}, add_labels=labels)


def _unlabel(*, actor: Actor, issue: Issue, labels: list[str]) -> Issue:
    return task_update(actor=actor, issue=issue, changes={}, remove_labels=labels)


def _set_priority(*, actor: Actor, issue: Issue, priority: int) -> Issue:
    return task_update(actor=actor, issue=issue, changes={"priority": priority})


@dataclass(frozen=True)
class Op:
    """One bulk verb: the action its refusals name (`update` for edits, which a finished issue
    refuses as frozen) and the one service call it makes per issue, given `args` as keywords."""

    action: str
    apply: Callable[..., Issue]


OPS: dict[str, Op] = {
    "assign": Op("assign", issue_assign),  # args: agent
    "cancel": Op("cancel", issue_cancel),  # args: reason
    "reassign": Op("reassign", issue_reassign),  # args: agent, reason
    "label": Op("update", _label),  # args: labels (names, made on first use)
    "unlabel": Op("update", _unlabel),  # args: labels
    "set_priority": Op("update", _set_priority),  # args: priority
}

# What a service raises when it refuses one issue: that issue's result, never the whole call's.
_REFUSALS = (DomainError, TransitionNotAllowed, ConcurrentTransition, DjangoValidationError)


@dataclass(frozen=True)
class BulkResult:
    """One ref's outcome. `issue` is the issue as it ends up (in a dry run, as it would), with
    its labels, dependencies and lock run loaded inside its transaction, when `error` is None;
    the issue as it was read when refused; None when the ref names nothing the actor sees."""

    ref: str
    issue: Issue | None
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def bulk_apply(
    *,
    actor: Actor,
    company: Company,
    ids: Sequence[str],
    op: str,
    args: dict[str, Any],
    dry_run: bool = False,
) -> list[BulkResult]:
    """Run `op` on each issue `ids` name (ids in either wire form, or identifiers), one
    transaction each, and say each one's outcome in the order given.

    A ref naming no issue of `company` the actor may see is `not_found`; an issue named twice
    runs once, its repeat a `duplicate`. A refusal (a domain error, the state machine's) is that
    issue's error; anything else (a bug, the database gone) propagates, the issues done before
    it staying done. Call it outside a transaction, or each issue's is not its own.
    """
    verb = OPS[op]
    issues = _issues_named(actor, company, ids)
    done: set[str] = set()
    results = []
    for ref in ids:
        issue = issues.get(ref)
        if issue is None:
            results.append(BulkResult(ref, None, NotFound()))
        elif issue.pk in done:
            message = "Listed more than once: only its first entry runs"
            error = DomainError(message, code="duplicate", details={"id": issue.pk})
            results.append(BulkResult(ref, issue, error))
        else:
            done.add(issue.pk)
            results.append(_apply_one(actor, verb, ref, issue, args, dry_run))
    return results


def _issues_named(actor: Actor, company: Company, refs: Sequence[str]) -> dict[str, Issue]:
    """The company's issues the refs name, in one query; a ref naming nothing is absent."""
    pks = {ref: parse_id(ref, "iss") for ref in refs}
    identifiers = {ref: ref.upper() for ref, pk in pks.items() if not pk}
    rows = (
        Issue.objects.visible_to(actor)
        .for_company(company.pk)
        .filter(
            Q(pk__in={pk for pk in pks.values() if pk}) | Q(identifier__in=identifiers.values())
        )
    )
    found = {issue.pk: issue for issue in rows} | {issue.identifier: issue for issue in rows}
    named = {ref: found.get(pks[ref] or identifiers.get(ref)) for ref in pks}
    return {ref: issue for ref, issue in named.items() if issue is not None}


def _apply_one(
    actor: Actor, verb: Op, ref: str, issue: Issue, args: dict[str, Any], dry_run: bool
) -> BulkResult:
    try:
        with transaction.atomic():
            issue = verb.apply(actor=actor, issue=issue, **args)
            # Read now: after a dry run's rollback they would be the old ones.
            prefetch_related_objects([issue], "labels", "dependencies", "checkout_run")
            if dry_run:
                transaction.set_rollback(True)
    except _REFUSALS as exc:
        return BulkResult(ref, issue, _as_domain_error(exc))
    return BulkResult(ref, issue)


def _as_domain_error(exc: Exception) -> DomainError:
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition):
        return from_fsm(exc)
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"nonFieldErrors": exc.messages}
        )
        return ValidationFailed(details=details)
    return exc
