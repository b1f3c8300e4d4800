"""The board's frame (DESIGN §11): the admin theme's settings callbacks, in one place.

`UNFOLD` in settings names these: who sees the plumbing (superusers only), and the sidebar
badges that say what needs a human now. The home page is the dashboard (`dashboard_callback`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import Http404
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil


def relative_time(moment, now=None) -> str:
    """`3 minutes ago`; under a minute, `just now` (not `0 minutes ago`): how the board says
    when, everywhere (`moment_html`, the `ago` template filter, the dashboard)."""
    now = now or timezone.now()
    if moment > now + timedelta(seconds=59):  # a time to come: a retry, a lease's end
        return f"in {timeuntil(moment, now)}"
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, now)} ago"


def moment_html(moment) -> str:
    """A list cell's when: relative, the exact time on hover (`—` for none)."""
    if moment is None:
        return "—"
    return format_html(
        '<span class="whitespace-nowrap" title="{}">{}</span>',
        moment.isoformat(),
        relative_time(moment),
    )


# Why an agent was woken, as the board says it: the runs list, a run's and a wake's page and the
# issue thread all word a wake reason from this one mapping (`wake_reason_html`).
WAKE_REASONS = {
    "issue_assigned": "assigned",
    "issue_reassigned": "reassigned",
    "issue_checked_out": "checked out",
    "issue_commented": "comment",
    "issue_comment_mentioned": "comment mention",
    "issue_changes_requested": "changes requested",
    "issue_ready": "blockers done",
    "issue_reopened": "reopened",
    "task_claimed": "task claimed",
    "approval_approved": "approval approved",
    "approval_rejected": "approval rejected",
    "approval_revision_requested": "approval revision requested",
}


def wake_reason_words(code: str) -> str:
    """`issue_comment_mentioned` → `comment mention`; a code not in `WAKE_REASONS` is spelled
    out (`some_new_code` → `some new code`)."""
    return WAKE_REASONS.get(code) or code.replace("_", " ").strip()


def wake_reason_html(code: str) -> str:
    """A wake reason in words, its code on hover (`—` for none)."""
    if not code:
        return "—"
    return format_html('<span title="{}">{}</span>', code, wake_reason_words(code))


def value_link(url: str, text: Any) -> str:
    """A link in a read-only value or a list cell that looks like one (the theme draws a
    read-only value's link as plain text)."""
    return format_html(
        '<a href="{}" class="text-primary-600 underline dark:text-primary-500">{}</a>', url, text
    )


def superuser_only(request) -> bool:
    """Plumbing (users, groups, keys, tokens, deliveries, the task queue) is the instance
    admin's; a board member's sidebar shows the work."""
    return request.user.is_superuser


def may_open(user, url: str) -> bool:
    """Whether `user` may open the admin page named `url`. A model's page
    (`admin:<app>_<model>_<page>`: its changelist, change page, the kanban, the org chart)
    needs the permission to view (or change) the model's rows, as the admin would ask; other
    pages (the index) are the admin's own to refuse. (Model names have no underscore; app
    labels here have none either.) The sidebar's entries and the dashboard's links ask this."""
    parts = url.removeprefix("admin:").split("_")
    if len(parts) != 3:
        return True
    app_label, model_name = parts[:2]
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(
        f"{app_label}.change_{model_name}"
    )


def link(title: str, icon: str, url: str, **extra: Any) -> dict[str, Any]:
    """A sidebar entry for a model's admin page (`admin:<app>_<model>_<page>`: its changelist,
    the kanban, the org chart), shown to those who may view the model (`may_open`) unless
    `permission` says otherwise."""
    extra.setdefault("permission", lambda request: may_open(request.user, url))
    path = reverse_lazy(url)
    extra.setdefault("active", lambda request: current_entry(request) == str(path))
    return {"title": title, "icon": icon, "link": path, **extra}


def current_entry(request) -> str | None:
    """The path of the one sidebar entry the page belongs to: the longest entry path the page's
    path starts with. (The theme marks every entry whose path is part of the page's, so on the
    kanban, /admin/issues/issue/kanban/, Issues would light up beside Kanban.)"""
    index = reverse("admin:index")
    paths = [str(item["link"]) for group in NAVIGATION for item in group["items"]]
    matching = [
        path
        for path in paths
        if request.path == path or (path != index and request.path.startswith(path))
    ]
    return max(matching, key=len, default=None)


def navigation(request) -> list[dict[str, Any]]:
    """The sidebar (`UNFOLD["SIDEBAR"]["navigation"]`)."""
    return NAVIGATION


NAVIGATION = [
    {
        "title": "Work",
        "separator": False,
        "items": [
            link("Dashboard", "dashboard", "admin:index"),
            link("Issues", "task_alt", "admin:issues_issue_changelist"),
            link("Kanban", "view_kanban", "admin:issues_issue_kanban"),
            link("Approvals", "approval", "admin:issues_approval_changelist"),
            link("Projects", "folder", "admin:issues_project_changelist"),
            link("Goals", "flag", "admin:issues_goal_changelist"),
            link("Labels", "label", "admin:issues_label_changelist"),
            link("Documents", "description", "admin:issues_document_changelist"),
            link("Comments", "forum", "admin:issues_comment_changelist"),
        ],
    },
    {
        "title": "Agents",
        "separator": True,
        "items": [
            link("Agents", "smart_toy", "admin:agents_agent_changelist"),
            link("Org chart", "account_tree", "admin:agents_agent_tree"),
            link("Runs", "play_circle", "admin:agents_heartbeatrun_changelist"),
            link("Teams", "groups", "admin:agents_team_changelist"),
            link("Webhooks", "webhook", "admin:agents_webhookendpoint_changelist"),
            link("Webhook deliveries", "send", "admin:agents_webhookdelivery_changelist"),
        ],
    },
    {
        "title": "Company",
        "separator": True,
        "items": [
            link("Companies", "apartment", "admin:companies_company_changelist"),
            link("Activity", "history", "admin:companies_activityevent_changelist"),
        ],
    },
    {
        "title": "Instance",
        "separator": True,
        "collapsible": True,
        "items": [
            link(title, icon, url, permission=superuser_only)
            for title, icon, url in (
                ("Users", "person", "admin:companies_user_changelist"),
                ("Groups", "group", "admin:auth_group_changelist"),
                ("Agent API keys", "key", "admin:agents_agentapikey_changelist"),
                ("Board tokens", "password", "admin:companies_boardtoken_changelist"),
                ("Wake requests", "alarm", "admin:agents_wakeuprequest_changelist"),
                ("Wake deliveries", "outbox", "admin:agents_wakedelivery_changelist"),
            )
        ],
    },
]  # fmt: skip


def dashboard_callback(request, context: dict[str, Any]) -> dict[str, Any]:
    """The board's home page (`UNFOLD["DASHBOARD_CALLBACK"]`, DESIGN §10): the dashboard of the
    company picked with `?company=<id>` (the user's first by default) among those it may see.
    A company it may not see is a 404, exactly like a missing one."""
    # The apps build on paperclip/, never the other way: the read is looked up when called.
    from companies.board_dashboard import board_companies, board_dashboard, picked_company

    companies = board_companies(request.user)
    company = picked_company(companies, request.GET.get("company"))
    if company is None and request.GET.get("company"):
        raise Http404("No such company")
    context.update(
        title="Dashboard",
        companies=companies,
        dashboard=board_dashboard(company, request.user) if company else None,
    )
    return context
