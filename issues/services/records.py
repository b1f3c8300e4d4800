"""Goals, projects and labels: plain records of the company, each write logged."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from companies.models import Company
from companies.services import apply_changes, log_change
from issues.models import (
    Goal,
    Issue,
    Label,
    Project,
)
from issues.services.relations import lock_company_graph, refuse_cycle
from paperclip.access import ensure_board, ensure_can_write
from paperclip.actors import Actor
from paperclip.naming import camel


@transaction.atomic
def record_create(*, actor: Actor, company: Company, model: type, data: dict[str, Any]):
    """Create a goal, project or label of the company (many-to-many values set after)."""
    ensure_can_write(actor, company.pk)
    data = dict(data)
    m2m = {f.name: data.pop(f.name) for f in model._meta.many_to_many if f.name in data}
    record = model.objects.create(company=company, **data)
    for name, values in m2m.items():
        getattr(record, name).set(values)
    log_change(actor, record, f"{model._meta.model_name}.created", {"name": str(record)})
    return record


@transaction.atomic
def record_update(*, actor: Actor, record, changes: dict[str, Any]):
    model = type(record)
    if "parent" in changes:
        lock_company_graph(record.company_id)  # before the row, as every graph edit does
    record = model.objects.select_for_update().get(pk=record.pk)
    ensure_can_write(actor, record.company_id)
    changes = dict(changes)
    if isinstance(record, Goal) and "parent" in changes:
        refuse_cycle(record, changes["parent"], kind="A goal")
    m2m = {f.name: changes.pop(f.name) for f in model._meta.many_to_many if f.name in changes}
    diff = apply_changes(record, changes)
    for name, values in m2m.items():
        before = set(getattr(record, name).values_list("pk", flat=True))
        after = {value.pk for value in values}
        if before != after:
            getattr(record, name).set(values)
            diff[camel(name[:-1] + "_ids")] = {"from": sorted(before), "to": sorted(after)}
    if diff:
        record.save()
        if isinstance(record, Label):
            Issue.objects.filter(labels=record).touch()  # they show its name and colour
        log_change(actor, record, f"{model._meta.model_name}.updated", {"changes": diff})
    return record


@transaction.atomic
def record_delete(*, actor: Actor, record) -> None:
    """Delete a goal, project or label; issues keep existing without it."""
    ensure_board(actor, record.company_id)
    model_name = record._meta.model_name
    log_change(actor, record, f"{model_name}.deleted", {"name": str(record)})
    record.delete()  # the issues showing it get a new version (issues.apps)


@transaction.atomic
def project_pause(*, actor: Actor, project: Project, reason: str = "") -> Project:
    """Pause a project: its issues refuse checkout until it is resumed (DESIGN §5). The status
    is left as it is. Pausing a paused project changes nothing and logs nothing.

    Board only, like pausing an agent: a pause is the humans' brake on the agents' work."""
    ensure_board(actor, project.company_id)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.is_paused:
        return project
    project.paused_at = timezone.now()
    project.pause_reason = reason or Project.MANUAL_PAUSE
    project.save()
    log_change(actor, project, "project.paused", {"reason": project.pause_reason})
    return project


@transaction.atomic
def project_resume(*, actor: Actor, project: Project) -> Project:
    """Resume a paused project: checkout works again, the status is the one it kept. Resuming a
    project that is not paused changes nothing and logs nothing. Board only."""
    ensure_board(actor, project.company_id)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if not project.is_paused:
        return project
    previous = {"pausedAt": project.paused_at, "reason": project.pause_reason}
    project.paused_at = None
    project.pause_reason = ""
    project.save()
    log_change(actor, project, "project.resumed", {"previous": previous})
    return project
