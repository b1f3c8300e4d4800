"""Approvals in the admin: the board's queue, decided through `approval_decide`.

Pending approvals come first; approve, reject and request revision are buttons on the page and
changelist actions, each one click; repeating a decision changes (and logs) nothing.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import Case, IntegerField, Prefetch, Value, When
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django_fsm import TransitionNotAllowed
from unfold.decorators import display
from unfold.widgets import UnfoldAdminTextareaWidget

from agents.models import Agent
from companies.admin import (
    SERVICE_REFUSALS,
    CompanyScopedAdmin,
    DefaultedFilter,
    ReadOnlyInline,
    SameCompanyForm,
    ServiceFSMAdmin,
    author_of,
    refusal_message,
    titled,
)
from companies.authentication import board_actor
from issues import services
from issues.models import Approval, ApprovalComment, Issue

STATUS_COLOURS = {
    Approval.Status.PENDING: "warning",
    Approval.Status.REVISION_REQUESTED: "info",
    Approval.Status.APPROVED: "success",
    Approval.Status.REJECTED: "danger",
    Approval.Status.CANCELLED: "info",
}


class AwaitingDecision(DefaultedFilter):
    """The queue opens on what waits for the board (pending); the rest is a click away."""

    title = "queue"
    parameter_name = "queue"
    default = "pending"

    def lookups(self, request, model_admin):
        return [("pending", "Waiting for the board"), ("all", "All")]

    def narrow(self, request, queryset, chosen: str):
        if chosen == "pending" and "status__exact" not in request.GET:
            return queryset.filter(status=Approval.Status.PENDING)
        return queryset


# What each type asks the board, in the page's words (the stored codes are Paperclip's).
TYPE_LABELS = {
    Approval.Type.HIRE_AGENT: "Hire",
    Approval.Type.APPROVE_CEO_STRATEGY: "CEO strategy",
    Approval.Type.BUDGET_OVERRIDE_REQUIRED: "Budget override",
    Approval.Type.REQUEST_BOARD_APPROVAL: "Board approval",
}

# JSON wraps rather than widening the page (a phone is 390 px).
PRE_WRAP = (
    "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px;"
    " white-space: pre-wrap; word-break: break-word; max-width: 100%"
)


def type_label(approval: Approval) -> str:
    return TYPE_LABELS.get(approval.type) or approval.get_type_display()


def summary(approval: Approval) -> str:
    """What the approval is, in a line: a hire by the name it asks for, else its type."""
    payload = approval.payload if isinstance(approval.payload, dict) else {}
    name = payload.get("name")
    if approval.type == Approval.Type.HIRE_AGENT and isinstance(name, str) and name.strip():
        role = payload.get("role")
        if role in Agent.Role.values:
            role = Agent.Role(role).label
        role = role or payload.get("title")
        role = f" ({role})" if isinstance(role, str) and role.strip() else ""
        return f"Hire {name.strip()}{role}"
    return type_label(approval)


def requester_of(approval: Approval) -> str:
    who = approval.requested_by_agent or approval.requested_by_user
    return str(who) if who else "—"


def title_of(approval: Approval) -> str:
    """The page's title: `Board approval requested by CEO (pending)`."""
    who = approval.requested_by_agent or approval.requested_by_user
    by = f" requested by {who}" if who else ""
    return f"{summary(approval)}{by} ({approval.get_status_display().lower()})"


DECISION_LABELS = {
    "approve": "Approve",
    "reject": "Reject",
    "request_revision": "Request revision",
}
# Decisions the board cannot make on an approval (a bad state, a read-only seat): shown, not 500.


class ApprovalForm(SameCompanyForm):
    note = forms.CharField(
        label="Decision note",
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept with the decision button you press (approve, reject, request revision).",
    )


class ApprovalCommentInline(ReadOnlyInline):
    model = ApprovalComment
    fields = ("created_at", "author", "body")
    readonly_fields = fields

    def get_queryset(self, request):
        # The `author` column names each comment's agent or user: joined, not a query a row.
        return super().get_queryset(request).select_related("author_agent", "author_user")

    @admin.display(description="author")
    def author(self, comment: ApprovalComment):
        return author_of(comment)


def decide(request, approval: Approval, decision: str, note: str = "") -> bool:
    """Apply one board decision through the service; answers whether it changed the approval.

    Refusals propagate (callers show them): the service refuses a read-only seat as it refuses
    the API's callers.
    """
    actor = board_actor(request.user)
    before = approval.status
    decided = services.approval_decide(actor=actor, approval=approval, decision=decision, note=note)
    return decided.status != before


def refusal(approval: Approval, decision: str, exc: Exception) -> str:
    if isinstance(exc, TransitionNotAllowed):
        reason = f"it is {approval.status}"
    else:
        reason = refusal_message(exc)
    return f"{DECISION_LABELS[decision]} refused for {approval.pk} ({approval.type}): {reason}."


@admin.register(Approval)
class ApprovalAdmin(CompanyScopedAdmin, ServiceFSMAdmin):
    """Pending approvals first. Decisions are changelist actions and buttons on the page; the
    status is never a form field, and repeating a decision changes (and logs) nothing."""

    form = ApprovalForm
    change_form_template = "admin/issues/approval/change_form.html"
    fsm_fields = ["status"]
    list_display = ("what", "kind", "state", "requester", "created_at", "linked_issues")
    list_display_links = ("what",)
    list_filter = (AwaitingDecision, "status", "type")
    search_fields = ("id", "requested_by_agent__name")
    list_select_related = ("company", "requested_by_agent", "requested_by_user")
    ordering = (
        Case(
            When(status=Approval.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ).asc(),
        "-created_at",
    )
    fieldsets = (
        (None, {"fields": (("kind", "status_now"), ("requester", "created_at"), "issue_links")}),
        ("Request", {"fields": ("payload_json",)}),
        ("Decision", {"fields": ("note",)}),
        ("Record", {"fields": ("id", "company", "updated_at")}),
    )
    decided_fields = (("decided_by_user", "decided_at"), "decision_note")
    # Everything but the decision note is shown, not edited (status moves by the buttons).
    readonly_fields = (
        "id",
        "company",
        "kind",
        "status_now",
        "requester",
        "created_at",
        "payload_json",
        "issue_links",
        "decided_by_user",
        "decided_at",
        "decision_note",
        "updated_at",
    )

    def get_fieldsets(self, request, obj=None):
        """The note box while it waits for the board (the only state it decides from); who
        decided, when and their note once it is decided."""
        if obj is None or obj.status == Approval.Status.PENDING:
            return self.fieldsets
        decision = ("Decision", {"fields": self.decided_fields})
        return tuple(decision if entry[0] == "Decision" else entry for entry in self.fieldsets)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        titled(context, obj, obj and title_of(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    inlines = [ApprovalCommentInline]
    actions = ["approve_selected", "reject_selected", "request_revision_selected"]

    def get_queryset(self, request):
        # `status` too: the lifecycle's mixin reads it as each issue loads (else a query each).
        only = ("id", "identifier", "title", "status")
        linked = Prefetch("issues", queryset=Issue.objects.only(*only))
        return super().get_queryset(request).prefetch_related(linked)

    @admin.display(description="Approval")
    def what(self, approval: Approval) -> str:
        """A hire by its name; anything else by its type and who asked (the type alone would
        read the same on every row)."""
        if approval.type == Approval.Type.HIRE_AGENT:
            return summary(approval)
        who = approval.requested_by_agent or approval.requested_by_user
        return f"{summary(approval)} from {who}" if who else summary(approval)

    @admin.display(description="Type", ordering="type")
    def kind(self, approval: Approval) -> str:
        return type_label(approval)

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def state(self, approval: Approval) -> str:
        return approval.status

    @admin.display(description="Status")
    def status_now(self, approval: Approval) -> str:
        return render_to_string(
            "unfold/helpers/label.html",
            {
                "text": approval.get_status_display(),
                "type": STATUS_COLOURS.get(approval.status),
            },
        )

    def has_add_permission(self, request):
        return False  # agents ask through the API (POST /api/companies/{id}/approvals)

    def has_delete_permission(self, request, obj=None):
        return False  # a decision record; the log refers to it

    @admin.display(description="Requested by")
    def requester(self, approval: Approval):
        return requester_of(approval)

    @admin.display(description="Linked issues")
    def linked_issues(self, approval: Approval):
        """The issues it is about, by identifier (their titles on hover), linked."""
        issues = sorted(approval.issues.all(), key=lambda issue: issue.identifier)
        if not issues:
            return "—"
        return format_html_join(
            mark_safe(", "),
            '<a href="{}" title="{}">{}</a>',
            (
                (reverse("admin:issues_issue_change", args=[i.pk]), i.title, i.identifier)
                for i in issues
            ),
        )

    @admin.display(description="Payload")
    def payload_json(self, approval: Approval):
        return format_html(
            '<pre style="{}">{}</pre>',
            PRE_WRAP,
            json.dumps(approval.payload, indent=2, sort_keys=True),
        )

    @admin.display(description="Linked issues")
    def issue_links(self, approval: Approval):
        issues = approval.issues.order_by("number")
        if not issues:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}" class="underline text-primary-600 dark:text-primary-500">{}</a> {} · {}',
            (
                (
                    reverse("admin:issues_issue_change", args=[quote(i.pk)]),
                    i.identifier,
                    i.title,
                    i.get_status_display(),
                )
                for i in issues
            ),
        )

    # The FSM buttons: only the board's three decisions (resubmit is the agent's, cancel has
    # no service).
    def is_fsm_transition_visible(self, transition) -> bool:
        return transition.name in DECISION_LABELS

    def get_fsm_label(self, transition) -> str:
        return DECISION_LABELS.get(transition.name, transition.name)

    def update(self, request, obj, changes, form):
        if form.cleaned_data.get("note") and not request.POST.get(self.fsm_post_param):
            self.message_user(
                request, "The note was not kept: it goes with a decision.", messages.WARNING
            )
        return obj  # nothing on the form is a field of the approval

    def transition(self, request, obj, name):
        decide(request, obj, name, note=request.POST.get("note", ""))

    def _decide_selected(self, request, queryset, decision: str) -> None:
        changed = unchanged = 0
        for approval in queryset:
            try:
                if decide(request, approval, decision):
                    changed += 1
                else:
                    unchanged += 1
            except SERVICE_REFUSALS as exc:
                self.message_user(request, refusal(approval, decision, exc), messages.ERROR)
        target = services.DECISIONS[decision]
        if changed:
            self.message_user(
                request, f"{DECISION_LABELS[decision]}: {changed} done.", messages.SUCCESS
            )
        if unchanged:
            self.message_user(request, f"{unchanged} already {target}: unchanged.", messages.INFO)

    @admin.action(description="Approve", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide_selected(request, queryset, "approve")

    @admin.action(description="Reject", permissions=["change"])
    def reject_selected(self, request, queryset):
        self._decide_selected(request, queryset, "reject")

    @admin.action(description="Request revision", permissions=["change"])
    def request_revision_selected(self, request, queryset):
        self._decide_selected(request, queryset, "request_revision")
