"""Issues in the admin. Every write goes through `issues.services`, like the API's: the status
moves only by the transition buttons, and each save bumps the version and logs one activity row.

The issue page also shows its documents (each with a page listing its revisions) and its
attachments (downloaded through the API, which accepts the admin session); approvals are a queue
the board decides from; goals, projects and labels save and delete through the record services.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, Count, IntegerField, Value, When
from django.template.defaultfilters import filesizeformat
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from agents.models import HeartbeatRun
from companies.admin import (
    CompanyScopedAdmin,
    ReadOnlyAdmin,
    SameCompanyForm,
    ServiceAdmin,
    ServiceFSMAdmin,
    refusal_message,
)
from companies.authentication import board_actor
from issues import services
from issues.models import (
    TRANSITION_TO,
    Approval,
    ApprovalComment,
    Attachment,
    Comment,
    Document,
    DocumentRevision,
    Goal,
    Issue,
    Label,
    Project,
)
from paperclip.errors import DomainError, NotAllowed

# The status each PATCH-able transition leads to; `reopen` has its own service.
PATCH_TARGETS = {name: target for target, name in TRANSITION_TO.items()}

EDITABLE_FIELDS = (
    "title",
    "description",
    "priority",
    "assignee_agent",
    "assignee_user",
    "project",
    "goal",
    "team",
    "parent",
    "labels",
    "dependencies",
    "billing_code",
    "budget_usd",
    "due_at",
    "hidden_at",
)
RECORD_FIELDS = (
    "number",
    "version",
    "created_by_agent",
    "created_by_user",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "cancelled_at",
    "failed_at",
    "checkout_run",
    "execution_locked_at",
)


class IssueForm(SameCompanyForm):
    new_comment = forms.CharField(
        label="Add a comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Posted as you when you save; allowed on finished issues too.",
    )

    def clean(self):
        cleaned = super().clean()
        # Naming one assignee replaces the other, as on the API.
        for name, other in (
            ("assignee_agent", "assignee_user"),
            ("assignee_user", "assignee_agent"),
        ):
            if cleaned.get(name) and name in self.changed_data and other not in self.changed_data:
                cleaned[other] = None
        return cleaned


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page, written only through the API's services."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def author_of(row) -> Any:
    return row.author_agent or row.author_user or "—"


class CommentInline(ReadOnlyInline):
    """Comments are read here; a new one is added with the form's "Add a comment" field."""

    model = Comment
    fields = ("created_at", "author", "body")
    readonly_fields = fields

    @admin.display(description="author")
    def author(self, comment: Comment):
        return author_of(comment)


class DocumentInline(ReadOnlyInline):
    """The issue's documents; each links to a page with its revision history."""

    model = Document
    fields = ("key", "title", "revision", "updated_at", "history")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("latest_revision")

    @admin.display(description="revision")
    def revision(self, document: Document):
        return document.latest_revision.number if document.latest_revision else "—"

    @admin.display(description="history")
    def history(self, document: Document):
        return format_html(
            '<a href="{}">Revisions</a>',
            reverse("admin:issues_document_change", args=[document.pk]),
        )


class AttachmentInline(ReadOnlyInline):
    """The issue's files, each downloaded through the API (the admin session is accepted)."""

    model = Attachment
    fields = ("original_name", "content_type", "size", "sha256", "created_at", "download")
    readonly_fields = fields

    @admin.display(description="size")
    def size(self, attachment: Attachment):
        return filesizeformat(attachment.byte_size)

    @admin.display(description="download")
    def download(self, attachment: Attachment):
        # The API's `contentPath`: served with nosniff, and as a download when executable.
        return format_html(
            '<a href="{}api/attachments/{}/content">Download</a>',
            get_script_prefix(),
            attachment.pk,
        )


@admin.register(Issue)
class IssueAdmin(CompanyScopedAdmin, ServiceFSMAdmin):
    form = IssueForm
    fsm_fields = ["status"]
    list_display = (
        "identifier",
        "title",
        "status",
        "priority",
        "assignee",
        "project",
        "updated_at",
    )
    list_filter = (
        "status",
        "priority",
        ("assignee_agent", admin.RelatedOnlyFieldListFilter),
        ("project", admin.RelatedOnlyFieldListFilter),
        ("labels", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("identifier", "title")
    list_select_related = ("assignee_agent", "assignee_user", "project")
    autocomplete_fields = ("parent", "dependencies")
    readonly_fields = ("identifier", "lock_holder", "runs", *RECORD_FIELDS)
    actions = ["force_release"]
    fieldsets = (
        (None, {"fields": ("company", "identifier", "status", *EDITABLE_FIELDS)}),
        (None, {"fields": ("new_comment",)}),
        ("Work", {"fields": ("lock_holder", "runs")}),
        ("Record", {"fields": RECORD_FIELDS, "classes": ("collapse",)}),
    )
    add_fieldsets = ((None, {"fields": ("company", *EDITABLE_FIELDS)}),)
    inlines = [DocumentInline, AttachmentInline, CommentInline]

    @admin.display(description="assignee")
    def assignee(self, issue: Issue):
        return issue.assignee_agent or issue.assignee_user

    @admin.display(description="lock holder")
    def lock_holder(self, issue: Issue):
        run = issue.checkout_run
        if run is None:
            return "—"
        state = "live" if run.is_live else "stale: released by the next checkout or the cleanup"
        return format_html(
            '<a href="{}">{}</a> · {} · {} ({})',
            reverse("admin:agents_heartbeatrun_change", args=[run.pk]),
            run.pk,
            run.agent,
            run.status,
            state,
        )

    @admin.display(description="runs (newest first)")
    def runs(self, issue: Issue):
        runs = HeartbeatRun.objects.for_issue(issue.pk).select_related("agent")[:20]
        if not runs:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> · {} · {} · {}',
            (
                (
                    reverse("admin:agents_heartbeatrun_change", args=[run.pk]),
                    run.pk,
                    run.agent,
                    run.status,
                    run.wake_reason or run.invocation_source,
                )
                for run in runs
            ),
        )

    @admin.action(description="Force-release the checkout lock of the selected issues")
    def force_release(self, request, queryset):
        """The board's escape hatch: drop the lock whoever holds it (in_progress → todo)."""
        actor = board_actor(request.user)
        released = 0
        for issue in queryset.filter(checkout_run__isnull=False):
            services.issue_force_release(actor=actor, issue=issue)
            released += 1
        self.message_user(request, f"Released {released} lock(s).", messages.SUCCESS)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.is_terminal:  # frozen: only a comment (or a reopen) is taken
            readonly += EDITABLE_FIELDS
        return readonly

    def create(self, request, form):
        return services.issue_create(
            actor=board_actor(request.user),
            company=form.cleaned_data["company"],
            data=self.model_data(form, "company"),
        )

    def update(self, request, obj, changes, form):
        return services.issue_update(
            actor=board_actor(request.user),
            issue=obj,
            changes=changes,
            comment=form.cleaned_data.get("new_comment") or None,
        )

    def save_related(self, request, form, formsets, change):
        # Not form.save_m2m(): the service has written labels and dependencies already.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def transition(self, request, obj, name):
        actor = board_actor(request.user)
        if name == "reopen":
            services.issue_reopen(actor=actor, issue=obj)
        else:
            services.issue_update(actor=actor, issue=obj, changes={"status": PATCH_TARGETS[name]})

    def delete_model(self, request, obj):
        services.issue_delete(actor=board_actor(request.user), issue=obj)

    def delete_queryset(self, request, queryset):
        for issue in queryset:
            services.issue_delete(actor=board_actor(request.user), issue=issue)


@admin.register(Comment)
class CommentAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("id", "issue", "author_agent", "author_user", "created_at")
    search_fields = ("issue__identifier", "body")
    list_select_related = ("issue", "author_agent", "author_user")


# --- Documents: read here, written through the API (revisions are append-only) ---


class DocumentRevisionInline(ReadOnlyInline):
    model = DocumentRevision
    fields = ("number", "title", "change_summary", "author", "run_id", "created_at", "excerpt")
    readonly_fields = fields
    ordering = ("-number",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author_agent", "author_user")

    @admin.display(description="author")
    def author(self, revision: DocumentRevision):
        return author_of(revision)

    @admin.display(description="body")
    def excerpt(self, revision: DocumentRevision):
        return Truncator(revision.body).chars(300)


@admin.register(Document)
class DocumentAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("key", "issue", "title", "revision", "updated_at")
    search_fields = ("key", "title", "issue__identifier")
    list_select_related = ("issue", "latest_revision")
    fields = (
        "issue_link",
        "key",
        "title",
        "format",
        "revision",
        "body",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [DocumentRevisionInline]

    @admin.display(description="issue")
    def issue_link(self, document: Document):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:issues_issue_change", args=[document.issue_id]),
            document.issue,
        )

    @admin.display(description="revision")
    def revision(self, document: Document):
        return document.latest_revision.number if document.latest_revision else "—"


# --- Approvals: the board's queue, decided through `approval_decide` ---

DECISION_LABELS = {
    "approve": "Approve",
    "reject": "Reject",
    "request_revision": "Request revision",
}
# Decisions the board cannot make on an approval (a bad state, a read-only seat): shown, not 500.
DECISION_REFUSALS = (DomainError, TransitionNotAllowed, ConcurrentTransition)


class ApprovalForm(SameCompanyForm):
    note = forms.CharField(
        label="Decision note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the decision button you press (approve, reject, request revision).",
    )


class ApprovalCommentInline(ReadOnlyInline):
    model = ApprovalComment
    fields = ("created_at", "author", "body")
    readonly_fields = fields

    @admin.display(description="author")
    def author(self, comment: ApprovalComment):
        return author_of(comment)


def decide(request, approval: Approval, decision: str, note: str = "") -> bool:
    """Apply one board decision through the service; answers whether it changed the approval.

    Refusals propagate (callers show them); a seat that is read-only in the approval's company
    is refused like the API refuses it.
    """
    actor = board_actor(request.user)
    if not actor.can_write(approval.company_id):
        raise NotAllowed("Your membership in this company is read-only")
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
    fsm_fields = ["status"]
    list_display = ("id", "type", "status", "requester", "created_at", "linked_issues", "company")
    list_filter = ("status", "type")
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
    fields = (
        "id",
        "company",
        "type",
        "status",
        "requester",
        "created_at",
        "payload_json",
        "issue_links",
        "decided_by_user",
        "decided_at",
        "decision_note",
        "updated_at",
        "note",
    )
    readonly_fields = (
        "id",
        "company",
        "type",
        "requester",
        "created_at",
        "payload_json",
        "issue_links",
        "decided_by_user",
        "decided_at",
        "decision_note",
        "updated_at",
    )
    inlines = [ApprovalCommentInline]
    actions = ["approve_selected", "reject_selected", "request_revision_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(issues_count=Count("issues"))

    def has_add_permission(self, request):
        return False  # agents ask through the API (POST /api/companies/{id}/approvals)

    def has_delete_permission(self, request, obj=None):
        return False  # a decision record; the log refers to it

    @admin.display(description="requester")
    def requester(self, approval: Approval):
        return approval.requested_by_agent or approval.requested_by_user or "—"

    @admin.display(description="linked issues", ordering="issues_count")
    def linked_issues(self, approval: Approval) -> int:
        return approval.issues_count

    @admin.display(description="payload")
    def payload_json(self, approval: Approval):
        return format_html("<pre>{}</pre>", json.dumps(approval.payload, indent=2, sort_keys=True))

    @admin.display(description="issues")
    def issue_links(self, approval: Approval):
        issues = approval.issues.order_by("number")
        if not issues:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> · {}',
            ((reverse("admin:issues_issue_change", args=[i.pk]), i, i.status) for i in issues),
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
            except DECISION_REFUSALS as exc:
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


# --- Goals, projects, labels: saved and deleted through the record services (logged) ---


class RecordAdmin(CompanyScopedAdmin, ServiceAdmin):
    readonly_fields = ("created_at",)

    def create(self, request, form):
        return services.record_create(
            actor=board_actor(request.user),
            company=form.cleaned_data["company"],
            model=self.model,
            data=self.model_data(form, "company"),
        )

    def update(self, request, obj, changes, form):
        return services.record_update(actor=board_actor(request.user), record=obj, changes=changes)

    def save_related(self, request, form, formsets, change):
        # Not form.save_m2m(): the service has set the many-to-many fields (project goals).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.record_delete(actor=board_actor(request.user), record=obj)

    def delete_queryset(self, request, queryset):
        actor = board_actor(request.user)
        for record in queryset:
            services.record_delete(actor=actor, record=record)


@admin.register(Goal)
class GoalAdmin(RecordAdmin):
    list_display = ("title", "company", "level", "status", "parent", "owner_agent")
    list_filter = ("level", "status", "company")
    search_fields = ("title",)
    list_select_related = ("company", "parent", "owner_agent")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Project)
class ProjectAdmin(RecordAdmin):
    list_display = ("name", "company", "status", "lead_agent", "target_date")
    list_filter = ("status", "company")
    search_fields = ("name",)
    list_select_related = ("company", "lead_agent")
    filter_horizontal = ("goals",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(Label)
class LabelAdmin(RecordAdmin):
    list_display = ("name", "company", "color")
    list_filter = ("company",)
    search_fields = ("name",)
    list_select_related = ("company",)
