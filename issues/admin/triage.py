"""The issue list as a triage queue (DESIGN §11): its filters, its saved views and its bulk
actions, which run through `issues.services.bulk.bulk_apply` as `/v1` bulk does.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.template.response import TemplateResponse

from agents.models import Agent
from companies.admin import refusal_message
from companies.authentication import board_actor
from companies.models import Company
from issues.models import OPEN_STATUSES, Issue, Priority, Status
from issues.services.bulk import bulk_apply

ALL = "all"


def _statuses(value: str | None) -> list[str]:
    """The statuses `status__in` names (comma-separated): open work when it names none."""
    if value == ALL:
        return list(Status.values)
    named = [s for s in (value or "").split(",") if s in Status.values]
    return named or list(OPEN_STATUSES)


class StatusFilter(admin.SimpleListFilter):
    """Open work unless asked otherwise; several statuses at once (`?status__in=todo,blocked`),
    each status a toggle; `all` for every issue, finished ones included."""

    title = "status"
    parameter_name = "status__in"

    def lookups(self, request, model_admin):
        return [(ALL, "All"), *Status.choices]

    def queryset(self, request, queryset):
        if self.value() == ALL:
            return queryset
        return queryset.filter(status__in=_statuses(self.value()))

    def choices(self, changelist):
        value = self.value()
        shown = set(_statuses(value))
        yield {
            "selected": value is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Open work",
        }
        yield {
            "selected": value == ALL,
            "query_string": changelist.get_query_string({self.parameter_name: ALL}),
            "display": "All",
        }
        for status, label in Status.choices:
            selected = value not in (None, ALL) and status in shown
            toggled = shown - {status} if selected else (shown if value else set()) | {status}
            ordered = [s for s in Status.values if s in toggled]
            query = (
                changelist.get_query_string({self.parameter_name: ",".join(ordered)})
                if ordered
                else changelist.get_query_string(remove=[self.parameter_name])
            )
            yield {"selected": selected, "query_string": query, "display": label}


class AssigneeFilter(admin.SimpleListFilter):
    """Mine (assigned to the board user looking) or nobody's."""

    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        return [("me", "Mine"), ("none", "Unassigned")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee_user=request.user)
        if self.value() == "none":
            return queryset.filter(assignee_agent__isnull=True, assignee_user__isnull=True)
        return queryset


class LockFilter(admin.SimpleListFilter):
    """Locked issues, and those whose lock is stale (its run finished or its lease expired)."""

    title = "checkout lock"
    parameter_name = "lock"

    def lookups(self, request, model_admin):
        return [("stale", "Stale"), ("held", "Held")]

    def queryset(self, request, queryset):
        if self.value() == "stale":
            return queryset.filter(pk__in=Issue.objects.stale_locks().values("pk"))
        if self.value() == "held":
            return queryset.filter(checkout_run__isnull=False)
        return queryset


# The saved views above the list: one click each (title, query).
SAVED_VIEWS = (
    ("Open work", {}),
    ("Mine", {"assignee": "me"}),
    ("Unassigned", {"assignee": "none"}),
    ("Blocked", {"status__in": "blocked"}),
    ("In review", {"status__in": "in_review"}),
    ("Stale locks", {"lock": "stale"}),
    ("Everything", {"status__in": ALL}),
)


# -- bulk actions ---------------------------------------------------------------------------


class BulkForm(forms.Form):
    """An intermediate page's arguments for one bulk op, as the service takes them."""

    def __init__(self, *args, company_ids: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        if "agent" in self.fields:
            self.fields["agent"].queryset = Agent.objects.filter(
                company_id__in=company_ids
            ).order_by("name")

    def args(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class AgentForm(BulkForm):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none())


class ReassignForm(AgentForm):
    reason = forms.CharField(required=False, max_length=2000)


class CancelForm(BulkForm):
    reason = forms.CharField(required=False, max_length=2000)


class LabelForm(BulkForm):
    labels = forms.CharField(
        max_length=1000, help_text="Label names, comma-separated; made on first use."
    )

    def args(self) -> dict[str, Any]:
        names = [name.strip() for name in self.cleaned_data["labels"].split(",")]
        return {"labels": [name for name in names if name]}


class PriorityForm(BulkForm):
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int)


BULK_FORMS: dict[str, tuple[type[BulkForm], str]] = {
    "assign": (AgentForm, "Assign to an agent"),
    "reassign": (ReassignForm, "Reassign to another agent"),
    "cancel": (CancelForm, "Cancel"),
    "label": (LabelForm, "Add labels"),
    "set_priority": (PriorityForm, "Set the priority"),
}


def bulk_action(model_admin, request, queryset: QuerySet, op: str, action: str):
    """One bulk op from the list: its intermediate page until its form is sent, then each
    selected issue through `bulk_apply` (its own transaction), each outcome a message."""
    form_class, title = BULK_FORMS[op]
    selected = list(queryset.values_list("pk", "company_id"))
    company_ids = {company_id for _, company_id in selected}
    form = form_class(request.POST if "apply" in request.POST else None, company_ids=company_ids)
    if form.is_bound and form.is_valid():
        if "agent" in form.cleaned_data and len(company_ids) > 1:
            model_admin.message_user(
                request, "Pick issues of one company to give them an agent.", messages.ERROR
            )
            return None
        _apply(model_admin, request, selected, op, form.args())
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{title}: {len(selected)} issue(s)",
        "opts": model_admin.model._meta,
        "form": form,
        "action": action,
        # `status` too: the lifecycle's mixin reads it as each issue loads (else a query each).
        "issues": queryset.select_related(None)
        .order_by("identifier")
        .only("identifier", "title", "status"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/issues/issue/bulk_form.html", context)


def _apply(model_admin, request, selected, op: str, args: dict[str, Any]) -> None:
    actor = board_actor(request.user)
    by_company: dict[str, list[str]] = defaultdict(list)
    for pk, company_id in selected:
        by_company[company_id].append(pk)
    done, refused = [], []
    for company in Company.objects.filter(pk__in=by_company):
        for result in bulk_apply(
            actor=actor, company=company, ids=by_company[company.pk], op=op, args=args
        ):
            name = result.issue.identifier if result.issue else result.ref
            if result.ok:
                done.append(name)
            else:
                refused.append(f"{name}: {refusal_message(result.error)}")
    verb = op.replace("_", " ")
    if done:
        model_admin.message_user(
            request, f"{verb}: done for {', '.join(sorted(done))}.", messages.SUCCESS
        )
    for line in refused:
        model_admin.message_user(request, f"{verb} refused for {line}", messages.ERROR)
