"""The issue in the admin: its page and the triage list. Every write goes through
`issues.services`, like the API's: the status moves only by the transition buttons, and each save
bumps the version and logs one activity row.

The page reads as a thread (`issues.admin.thread`): the status buttons; the issue's essentials
(relations, the lock with its force-release button, approvals, documents linking to their
revisions and last diff, attachments downloaded through the API, which accepts the admin
session); one timeline of comments, activity, runs and document revisions with a comment box
under it; then the edit form.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.decorators import display

from companies.admin import (
    ISSUE_IDENTIFIER,
    SERVICE_REFUSALS,
    CompanyScopedAdmin,
    SameCompanyForm,
    ServiceFSMAdmin,
    author_of,
    refusal_message,
    release_locks,
    with_newlines,
)
from companies.authentication import board_actor
from issues import services
from issues.admin import kanban, thread
from issues.admin.triage import (
    SAVED_VIEWS,
    AssigneeFilter,
    LockFilter,
    StatusFilter,
    bulk_action,
)
from issues.models import (
    TRANSITION_TO,
    DocumentRevision,
    Issue,
    Priority,
    Project,
)
from paperclip.board import moment_html

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
        help_text="Posted as you with Comment, or with a status button or Save; allowed on"
        " finished issues too.",
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


STATUS_COLOURS = {
    "backlog": "",
    "todo": "info",
    "in_progress": "primary",
    "in_review": "warning",
    "blocked": "danger",
    "done": "success",
    "cancelled": "",
    "failed": "danger",
}
PRIORITY_COLOURS = {"critical": "danger", "high": "warning", "medium": "info", "low": ""}


class TriageChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # Labels in one query for the page, whatever its rows.
        return super().get_queryset(request, exclude_parameters).prefetch_related("labels")


@admin.register(Issue)
class IssueAdmin(CompanyScopedAdmin, ServiceFSMAdmin):
    form = IssueForm
    fsm_fields = ["status"]
    list_display = (
        "identifier",
        "title",
        "status_badge",
        "priority_badge",
        "assignee",
        "project",
        "label_names",
        "lock",
        "updated",
    )
    list_display_links = ("identifier", "title")
    list_filter = (
        StatusFilter,
        AssigneeFilter,
        LockFilter,
        "priority",
        ("assignee_agent", admin.RelatedOnlyFieldListFilter),
        ("project", admin.RelatedOnlyFieldListFilter),
        ("labels", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("identifier", "title")
    list_select_related = (
        "assignee_agent",
        "assignee_user",
        "project",
        "checkout_run__agent",
    )
    list_before_template = "admin/issues/issue/saved_views.html"
    autocomplete_fields = ("parent", "dependencies")
    readonly_fields = ("identifier", *RECORD_FIELDS)
    actions = [
        "bulk_assign",
        "bulk_reassign",
        "bulk_cancel",
        "bulk_label",
        "bulk_set_priority",
        "force_release",
    ]
    fieldsets = (
        # `new_comment` is the thread's comment box (the template renders it under the timeline).
        ("Edit", {"fields": ("company", "identifier", "status", *EDITABLE_FIELDS)}),
        ("Record", {"fields": RECORD_FIELDS, "classes": ("collapse",)}),
    )
    add_fieldsets = ((None, {"fields": ("company", *EDITABLE_FIELDS)}),)
    change_form_template = "admin/issues/issue/change_form.html"

    # -- the triage list ---------------------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return TriageChangeList

    def changelist_view(self, request, extra_context=None):
        # An exact identifier typed in search (`DEM-12`, any case) opens that issue.
        term = request.GET.get(SEARCH_VAR, "").strip()
        if ISSUE_IDENTIFIER.fullmatch(term):
            named = self.get_queryset(request).filter(identifier__iexact=term).first()
            if named is not None:
                return HttpResponseRedirect(
                    reverse("admin:issues_issue_change", args=[quote(named.pk)])
                )
        context = {**(extra_context or {}), "saved_views": self._saved_views(request)}
        return super().changelist_view(request, context)

    def _saved_views(self, request) -> dict:
        """The one-click views above the list, and the projects to pick one from."""
        base = reverse("admin:issues_issue_changelist")
        current = {key: value for key, value in request.GET.items() if key != "p"}
        views = [
            {"title": title, "url": f"{base}?{urlencode(query)}" if query else base,
             "active": current == query}
            for title, query in SAVED_VIEWS
        ]  # fmt: skip
        projects = Project.objects.filter(
            pk__in=self.get_queryset(request).exclude(project=None).values("project_id")
        ).order_by("name")
        return {
            "views": views,
            "projects": [(p.pk, p.name) for p in projects],
            "project": request.GET.get("project__id__exact", ""),
            "kanban": reverse("admin:issues_issue_kanban"),
        }

    @display(description="status", ordering="status", label=STATUS_COLOURS)
    def status_badge(self, issue: Issue):
        return issue.status, issue.get_status_display()

    @display(description="priority", ordering="priority", label=PRIORITY_COLOURS)
    def priority_badge(self, issue: Issue):
        label = Priority(issue.priority).label
        return label.lower(), label

    @display(description="labels", label=True)
    def label_names(self, issue: Issue):
        return [label.name for label in issue.labels.all()] or None

    @display(description="lock")
    def lock(self, issue: Issue):
        run = issue.checkout_run
        if run is None:
            return "—"
        state = "live" if run.is_live else "stale"
        return format_html(
            '<a href="{}" title="{}">{} · {}</a>',
            reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)]),
            run.pk,
            run.agent,
            state,
        )

    @display(description="updated", ordering="updated_at")
    def updated(self, issue: Issue):
        return moment_html(issue.updated_at)

    # -- bulk actions, through the service `/v1` bulk uses -----------------------------------

    @admin.action(description="Assign the selected issues to an agent")
    def bulk_assign(self, request, queryset):
        return bulk_action(self, request, queryset, "assign", "bulk_assign")

    @admin.action(description="Reassign the selected issues to another agent")
    def bulk_reassign(self, request, queryset):
        return bulk_action(self, request, queryset, "reassign", "bulk_reassign")

    @admin.action(description="Cancel the selected issues")
    def bulk_cancel(self, request, queryset):
        return bulk_action(self, request, queryset, "cancel", "bulk_cancel")

    @admin.action(description="Add labels to the selected issues")
    def bulk_label(self, request, queryset):
        return bulk_action(self, request, queryset, "label", "bulk_label")

    @admin.action(description="Set the priority of the selected issues")
    def bulk_set_priority(self, request, queryset):
        return bulk_action(self, request, queryset, "set_priority", "bulk_set_priority")

    # -- the kanban and the issue page's own verbs --------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("kanban/", view(partial(kanban.board_view, self)), name="issues_issue_kanban"),
            path(
                "kanban/move/",
                view(partial(kanban.move_view, self)),
                name="issues_issue_kanban_move",
            ),
            path(
                "<path:object_id>/comment/",
                view(self.comment_view),
                name="issues_issue_comment",
            ),
            path(
                "<path:object_id>/force-release/",
                view(self.force_release_view),
                name="issues_issue_force_release",
            ),
            path(
                "<path:object_id>/revisions/<str:revision_id>/diff/",
                view(self.revision_diff_view),
                name="issues_issue_revision_diff",
            ),
            *super().get_urls(),
        ]

    # -- the issue page ----------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            # Lazy: built only when the template reads it (a saved form redirects instead).
            context["thread"] = SimpleLazyObject(lambda: thread.issue_thread(obj))
            context["essentials"] = SimpleLazyObject(lambda: thread.issue_essentials(obj))
            context["assignee_name"] = str(obj.assignee_agent or obj.assignee_user or "")
            context["status_colour"] = STATUS_COLOURS.get(obj.status, "")
            context["priority_label"] = Priority(obj.priority).label
            context["priority_colour"] = PRIORITY_COLOURS.get(Priority(obj.priority).label.lower())
            context["comment_url"] = reverse("admin:issues_issue_comment", args=[quote(obj.pk)])
            context["force_release_url"] = reverse(
                "admin:issues_issue_force_release", args=[quote(obj.pk)]
            )
            context["can_force_release"] = self.has_change_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _issue_or_redirect(self, request, object_id: str, *, change: bool):
        """The issue the URL names, as the change page finds it (another company's is "does not
        exist", like a missing one); or the response to give instead."""
        issue = self.get_object(request, unquote(object_id))
        if issue is None:
            return None, self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        allowed = self.has_change_permission if change else self.has_view_permission
        if not allowed(request, issue):
            raise PermissionDenied
        return issue, None

    def _back_to(self, issue: Issue) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:issues_issue_change", args=[quote(issue.pk)]))

    @method_decorator(require_POST)
    def comment_view(self, request, object_id):
        """The thread's comment box: `comment_create` as the board user (with `reopen` when the
        box's checkbox is ticked on a finished issue), then back to the page."""
        issue, refusal = self._issue_or_redirect(request, object_id, change=False)
        if refusal:
            return refusal
        body = with_newlines(request.POST.get("new_comment", "")).strip()
        if not body:
            self.message_user(request, "Write a comment first.", messages.WARNING)
            return self._back_to(issue)
        try:
            services.comment_create(
                actor=board_actor(request.user),
                issue=issue,
                body=body,
                reopen=bool(request.POST.get("reopen")),
            )
        except SERVICE_REFUSALS as exc:
            self.message_user(request, refusal_message(exc), messages.ERROR)
        else:
            self.message_user(request, "Comment added.", messages.SUCCESS)
        return self._back_to(issue)

    @method_decorator(require_POST)
    def force_release_view(self, request, object_id):
        """The lock's button on the page: `issue_force_release`, the message naming the holder."""
        issue, refusal = self._issue_or_redirect(request, object_id, change=True)
        if refusal:
            return refusal
        release_locks(self, request, [issue], services.issue_force_release)
        return self._back_to(issue)

    def revision_diff_view(self, request, object_id, revision_id):
        """A document revision against the one before it (escaped unified diff)."""
        issue, refusal = self._issue_or_redirect(request, object_id, change=False)
        if refusal:
            return refusal
        revision = (
            DocumentRevision.objects.filter(pk=unquote(revision_id), document__issue=issue)
            .select_related("document", "author_agent", "author_user")
            .first()
        )
        if revision is None:
            raise Http404("No such revision on this issue")
        context = {
            **self.admin_site.each_context(request),
            "title": f"{issue.identifier} · {revision.document.key} r{revision.number}",
            "opts": self.opts,
            "original": issue,  # the header's trail: Home > Issues > the issue
            "issue": issue,
            "issue_url": reverse("admin:issues_issue_change", args=[quote(issue.pk)]),
            "revision": revision,
            "author": author_of(revision),
            **thread.revision_diff(revision),
        }
        return TemplateResponse(request, "admin/issues/issue/revision_diff.html", context)

    @admin.display(description="assignee")
    def assignee(self, issue: Issue):
        return issue.assignee_agent or issue.assignee_user

    @admin.action(description="Force-release the checkout lock of the selected issues")
    def force_release(self, request, queryset):
        """The board's escape hatch: drop the lock whoever holds it (in_progress → todo). The
        message names each holder (run and agent), live or stale, so nothing vanishes unseen."""
        locked = queryset.filter(checkout_run__isnull=False)
        release_locks(self, request, locked, services.issue_force_release)

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
