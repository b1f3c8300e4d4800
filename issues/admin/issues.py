"""The issue in the admin: its page and the triage list. Every write goes through
`issues.services`, like the API's: the status moves only by the transition buttons, and each save
bumps the version and logs one activity row.

The page also shows the issue's thread: comments, documents (each linking to its revisions),
attachments (downloaded through the API, which accepts the admin session), the lock holder and
the runs that worked on it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.db.models import Case, Value, When
from django.template.defaultfilters import filesizeformat
from django.urls import get_script_prefix, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agents.models import HeartbeatRun
from companies.admin import (
    ISSUE_IDENTIFIER,
    SERVICE_REFUSALS,
    CompanyScopedAdmin,
    ReadOnlyInline,
    SameCompanyForm,
    ServiceFSMAdmin,
    author_of,
    refusal_message,
)
from companies.authentication import board_actor
from issues import services
from issues.models import TRANSITION_TO, Attachment, Comment, Document, Issue

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
        runs = HeartbeatRun.objects.for_issue(issue.pk, company_id=issue.company_id).select_related(
            "agent"
        )[:20]
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
        """The board's escape hatch: drop the lock whoever holds it (in_progress → todo). The
        message names each holder (run and agent), live or stale, so nothing vanishes unseen."""
        actor = board_actor(request.user)
        released = []
        locked = queryset.filter(checkout_run__isnull=False).select_related("checkout_run__agent")
        for issue in locked:
            agent = issue.checkout_run.agent
            try:
                _, holder = services.issue_force_release(actor=actor, issue=issue)
            except SERVICE_REFUSALS as exc:
                self.message_user(
                    request, f"{issue.identifier}: {refusal_message(exc)}", messages.ERROR
                )
                continue
            state = "live" if holder["runWasLive"] else "stale"
            released.append(f"{issue.identifier} from run {holder['runId']} of {agent} ({state})")
        if released:
            self.message_user(
                request,
                f"Released {len(released)} lock(s): {'; '.join(released)}.",
                messages.SUCCESS,
            )
        elif not locked:
            self.message_user(request, "None of the selected issues is locked.", messages.INFO)

    def get_ordering(self, request):
        # "DEM-3" also finds DEM-30…DEM-39 (and titles naming it): the issue it names comes first.
        ordering = super().get_ordering(request)
        term = request.GET.get(SEARCH_VAR, "").strip()
        if not ISSUE_IDENTIFIER.fullmatch(term):
            return ordering
        exact = Case(When(identifier__iexact=term, then=Value(0)), default=Value(1))
        return [exact.asc(), *(ordering or Issue._meta.ordering)]

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

    def delete(self, actor, obj):
        services.issue_delete(actor=actor, issue=obj)
