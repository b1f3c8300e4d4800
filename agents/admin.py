"""Agents in the admin: status moves only through the pause/resume/terminate services; webhook
endpoints save, delete, re-enable, ping and rotate through the webhook services."""

from __future__ import annotations

import json

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.decorators import display

from agents import services
from agents.events import ALL, EVENT_TYPES
from agents.models import (
    SECRET_MASK,
    Agent,
    AgentApiKey,
    HeartbeatRun,
    Team,
    WakeDelivery,
    WakeupRequest,
    WebhookDelivery,
    WebhookEndpoint,
    masked_adapter_config,
)
from companies.admin import (
    SERVICE_REFUSALS,
    CompanyScopedAdmin,
    DefaultedFilter,
    IssueIdentifierSearch,
    ReadOnlyAdmin,
    ReadOnlyInline,
    SameCompanyForm,
    ServiceAdmin,
    ServiceFSMAdmin,
    each_row,
    refusal_message,
    release_locks,
    titled,
)
from companies.authentication import board_actor
from companies.models import Company
from paperclip.board import moment_html, wake_reason_html, wake_reason_words
from paperclip.errors import ValidationFailed


def humanized(code: str) -> str:
    """`issue_assigned` → `Issue assigned`: a snake_case code as a reader says it."""
    return code.replace("_", " ").strip().capitalize()


def status_badge(status: str, colours: dict[str, str]) -> str:
    """A status as the theme's coloured label (the list columns' `@display(label=)` look)."""
    return render_to_string(
        "unfold/helpers/label.html", {"text": humanized(status), "type": colours.get(status)}
    )


def lease_left(expires_at) -> str:
    """`4m 10s left`, or `expired 3m ago`: what the countdown shows before its script runs."""
    seconds = int((expires_at - timezone.now()).total_seconds())
    minutes, rest = divmod(abs(seconds), 60)
    span = f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"
    return f"{span} left" if seconds > 0 else f"expired {span} ago"


AGENT_STATUS_COLOURS = {
    Agent.Status.ACTIVE: "success",
    Agent.Status.IDLE: "info",
    Agent.Status.RUNNING: "success",
    Agent.Status.PAUSED: "warning",
    Agent.Status.ERROR: "danger",
    Agent.Status.PENDING_APPROVAL: "info",
    Agent.Status.TERMINATED: "danger",
}

AGENT_TRANSITIONS = {
    "pause": services.agent_pause,
    "resume": services.agent_resume,
    "terminate": services.agent_terminate,
}


@admin.register(Team)
class TeamAdmin(CompanyScopedAdmin, ServiceAdmin):
    """Teams save and delete through the team services, like every other write."""

    list_display = ("name", "company", "created_at")
    list_filter = ("company",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")

    def create(self, request, form):
        return services.team_create(
            actor=board_actor(request.user),
            company=form.cleaned_data["company"],
            data=self.model_data(form, "company"),
        )

    def update(self, request, obj, changes, form):
        return services.team_update(actor=board_actor(request.user), team=obj, changes=changes)

    def delete(self, actor, obj):
        services.team_delete(actor=actor, team=obj)


MONOSPACE = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px"
# JSON and logs wrap rather than widen the page (a phone is 390 px).
PRE_WRAP = f"{MONOSPACE}; white-space: pre-wrap; word-break: break-word; max-width: 100%"


class IndentedJSONField(forms.JSONField):
    """A JSON textarea laid out one key a line (compared by value, so the layout is no edit)."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, cls=self.encoder, indent=2)


class AgentForm(SameCompanyForm):
    """The agent's fields, with its adapter settings shown as the API reads them: a process
    agent's `env` values masked (`masked_adapter_config`). Posted back untouched the config is
    unchanged; edited, the service puts the stored values back where the mask still is."""

    class Meta:
        model = Agent
        fields = "__all__"
        labels = {"budget_monthly_cents": "Monthly budget (cents)"}
        help_texts = {
            "budget_monthly_cents": (
                "In cents: 2500 is $25.00 a month; 0 means no budget. When this month's spend"
                " reaches it, the agent is paused (reason: budget)."
            ),
            "adapter_config": (
                "A JSON object. Process agents: command, args (a list), cwd, env (an object;"
                f" stored values show as {SECRET_MASK} and are kept when left so), timeoutSec,"
                " graceSec, maxConcurrentRuns. HTTP agents: url, the address woken runs are"
                " POSTed to."
            ),
            "permissions": (
                'A JSON object kept for Paperclip clients (e.g. {"canCreateAgents": true});'
                " the server's own rules (board seats, chain of command) do not read it."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "adapter_config" in self.initial:
            self.initial["adapter_config"] = masked_adapter_config(self.initial["adapter_config"])
        for name in ("adapter_config", "permissions"):
            if name in self.fields:
                self.fields[name].__class__ = IndentedJSONField
                self.fields[name].widget.attrs.update(rows=6, style=MONOSPACE, spellcheck="false")


@admin.register(Agent)
class AgentAdmin(CompanyScopedAdmin, ServiceFSMAdmin):
    """Agents: status, live run, open issues and spend against budget at a glance; pause,
    resume and terminate from the list or the page (the agent services); the org chart
    (`tree/`) shows who reports to whom."""

    fsm_fields = ["status"]
    list_display = (
        "name",
        "role",
        "state",  # and why it is paused: one column fewer, so the list fits at 1280 px
        "live_runs",
        "open_issues",
        "spend",
        "reports_to",
        "last_heartbeat",
    )
    list_filter = ("status", "role", "company")
    search_fields = ("name", "title")
    list_select_related = ("company", "reports_to")
    form = AgentForm
    readonly_fields = (
        "id",
        "status_now",
        "pause_reason",
        "spend",
        "live_runs",
        "open_issues",
        "last_heartbeat_at",
        "adapter_settings",
        "recent_runs",
        "open_issue_list",
        "created_at",
        "updated_at",
    )
    add_fieldsets = (
        (None, {"fields": ("company", "name", ("role", "title"), ("reports_to", "team"))}),
        ("Budget", {"fields": ("budget_monthly_cents",)}),
        ("Work", {"fields": ("capabilities", "adapter_type", "adapter_config", "permissions")}),
    )
    fieldsets = (
        (None, {"fields": ("name", ("role", "title"), ("reports_to", "team"), "company")}),
        (
            "Status",
            {
                "fields": (
                    ("status_now", "pause_reason"),
                    ("spend", "budget_monthly_cents"),
                    ("live_runs", "open_issues"),
                    "last_heartbeat_at",
                )
            },
        ),
        ("Recent runs", {"fields": ("recent_runs",)}),
        ("Open issues", {"fields": ("open_issue_list",)}),
        ("Work", {"fields": ("capabilities", "adapter_type", "adapter_config", "permissions")}),
        ("Record", {"fields": ("id", ("created_at", "updated_at")), "classes": ["collapse"]}),
    )
    actions = ["pause_selected", "resume_selected", "terminate_selected"]
    recent_shown = 10
    open_shown = 20

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if self.has_change_permission(request, obj):
            return self.fieldsets

        # Read-only, a field would show the stored config as it is: the masked one instead.
        def masked(names):
            return tuple("adapter_settings" if n == "adapter_config" else n for n in names)

        return tuple(
            (title, {**opts, "fields": masked(opts["fields"])}) for title, opts in self.fieldsets
        )

    @admin.display(description="Status")
    def status_now(self, agent: Agent) -> str:
        return status_badge(agent.status, AGENT_STATUS_COLOURS)

    @admin.display(description="Adapter config")
    def adapter_settings(self, agent: Agent) -> str:
        config = masked_adapter_config(agent.adapter_config)
        return format_html(
            '<pre style="{}">{}</pre>',
            PRE_WRAP,
            json.dumps(config, indent=2, sort_keys=True),
        )

    @admin.display(description="Last runs")
    def recent_runs(self, agent: Agent) -> str:
        """The agent's newest runs, each with its status and issue: one query."""
        issues = apps.get_model("issues", "Issue").objects.filter(pk=OuterRef("issue_id"))
        runs = list(
            agent.runs.annotate(issue_identifier=Subquery(issues.values("identifier")[:1]))
            .order_by("-created_at", "-id")
            .values("id", "status", "wake_reason", "issue_identifier", "created_at")[
                : self.recent_shown
            ]
        )
        if not runs:
            return "No runs yet."
        rows = format_html_join(
            "",
            '<li style="margin: 0.25rem 0"><a href="{}" class="underline">{}</a> {} {} · {}</li>',
            (
                (
                    reverse("admin:agents_heartbeatrun_change", args=[quote(run["id"])]),
                    timezone.localtime(run["created_at"]).strftime("%Y-%m-%d %H:%M"),
                    status_badge(run["status"], RUN_STATUS_COLOURS),
                    wake_reason_html(run["wake_reason"]),
                    run["issue_identifier"] or "no issue",
                )
                for run in runs
            ),
        )
        everything = reverse("admin:agents_heartbeatrun_changelist")
        return format_html(
            '<ul style="margin: 0; padding: 0; list-style: none">{}</ul>'
            '<a href="{}?state=all&agent__id__exact={}" class="underline">All its runs</a>',
            rows,
            everything,
            agent.pk,
        )

    @admin.display(description="Assigned, open")
    def open_issue_list(self, agent: Agent) -> str:
        """Its open issues by identifier (title beside it): one query."""
        from issues.models import OPEN_STATUSES, Issue  # issues build on agents

        issues = list(
            Issue.objects.filter(assignee_agent=agent, status__in=OPEN_STATUSES)
            .order_by("-updated_at", "-id")
            .values("id", "identifier", "title", "status")[: self.open_shown]
        )
        statuses = dict(Issue._meta.get_field("status").choices)
        if not issues:
            return "None."
        rows = format_html_join(
            "",
            '<li style="margin: 0.25rem 0"><a href="{}" class="underline">{}</a> {} · {}</li>',
            (
                (
                    reverse("admin:issues_issue_change", args=[issue["id"]]),
                    issue["identifier"],
                    issue["title"],
                    statuses.get(issue["status"], issue["status"]),
                )
                for issue in issues
            ),
        )
        everything = reverse("admin:issues_issue_changelist")
        return format_html(
            '<ul style="margin: 0; padding: 0; list-style: none">{}</ul>'
            '<a href="{}?assignee_agent__id__exact={}" class="underline">All its issues</a>',
            rows,
            everything,
            agent.pk,
        )

    def get_queryset(self, request):
        from issues.models import OPEN_STATUSES, Issue  # issues build on agents

        # Counts as subqueries: `with_spend` already joins the agent's costs.
        def count(rows, key: str):
            counted = rows.order_by().values(key).annotate(n=Count("pk")).values("n")
            return Coalesce(Subquery(counted[:1]), 0)

        issues = Issue.objects.filter(assignee_agent=OuterRef("pk"), status__in=OPEN_STATUSES)
        runs = HeartbeatRun.objects.filter(agent=OuterRef("pk")).live()
        return (
            super()
            .get_queryset(request)
            .with_spend()  # the spend column, no query a row
            .annotate(
                open_issue_count=count(issues, "assignee_agent"),
                live_run_count=count(runs, "agent"),
            )
        )

    @display(description="Status", ordering="status", label=AGENT_STATUS_COLOURS)
    def state(self, agent: Agent) -> tuple[str, str]:
        if agent.pause_reason:
            return agent.status, f"{agent.status} · {agent.pause_reason}"
        return agent.status, agent.status

    @admin.display(description="Last heartbeat", ordering="last_heartbeat_at")
    def last_heartbeat(self, agent: Agent) -> str:
        return moment_html(agent.last_heartbeat_at) if agent.last_heartbeat_at else "—"

    @admin.display(description="Live runs", ordering="live_run_count")
    def live_runs(self, agent: Agent):
        if not agent.live_run_count:
            return "—"
        url = reverse("admin:agents_heartbeatrun_changelist") + f"?agent__id__exact={agent.pk}"
        return format_html('<a href="{}">{}</a>', url, agent.live_run_count)

    @admin.display(description="Open issues", ordering="open_issue_count")
    def open_issues(self, agent: Agent):
        if not agent.open_issue_count:
            return "—"
        url = reverse("admin:issues_issue_changelist") + f"?assignee_agent__id__exact={agent.pk}"
        return format_html('<a href="{}">{}</a>', url, agent.open_issue_count)

    def _transition_selected(self, request, queryset, name: str) -> None:
        done = each_row(
            self,
            request,
            queryset,
            lambda actor, agent: AGENT_TRANSITIONS[name](actor=actor, agent=agent),
        )
        if done:
            self.message_user(request, f"{name.capitalize()}: {len(done)} done.", messages.SUCCESS)

    @admin.action(description="Pause", permissions=["change"])
    def pause_selected(self, request, queryset):
        self._transition_selected(request, queryset, "pause")

    @admin.action(description="Resume", permissions=["change"])
    def resume_selected(self, request, queryset):
        self._transition_selected(request, queryset, "resume")

    @admin.action(description="Terminate", permissions=["change"])
    def terminate_selected(self, request, queryset):
        self._transition_selected(request, queryset, "terminate")

    def get_urls(self):
        tree = self.admin_site.admin_view(self.org_chart)
        return [path("tree/", tree, name="agents_agent_tree"), *super().get_urls()]

    def org_chart(self, request):
        """Who reports to whom, per company the user sees: one query for all the agents."""
        agents = list(
            self.get_queryset(request).select_related("company").order_by("company__name", "name")
        )
        children: dict[str | None, list[Agent]] = {}
        ids = {agent.pk for agent in agents}
        for agent in agents:
            boss = agent.reports_to_id if agent.reports_to_id in ids else None
            children.setdefault(boss, []).append(agent)

        def branch(boss_id):
            return [(agent, branch(agent.pk)) for agent in children.get(boss_id, [])]

        companies: dict[str, list] = {}
        for agent, reports in branch(None):
            companies.setdefault(agent.company.name, []).append((agent, reports))
        context = {
            **self.admin_site.each_context(request),
            "title": "Org chart",
            "content_title": "Org chart",  # the header's title (no `opts`: "Agents > Agents")
            "companies": companies,
        }
        return TemplateResponse(request, "admin/agents/agent/tree.html", context)

    @admin.display(description="Spent this month")
    def spend(self, agent: Agent) -> str:
        """This month's spend against the monthly budget (DESIGN §10)."""
        spent = float(agent.spent_cents_this_month) / 100
        if not agent.budget_monthly_cents:
            return f"${spent:,.2f} (no budget)"
        budget = agent.budget_monthly_cents / 100
        return f"${spent:,.2f} of ${budget:,.2f} ({spent / budget:.0%})"

    def has_delete_permission(self, request, obj=None):
        return False  # an agent is terminated, never deleted: the log and issues refer to it

    def create(self, request, form):
        return services.agent_create(
            actor=board_actor(request.user),
            company=form.cleaned_data["company"],
            data=self.model_data(form, "company"),
        )

    def update(self, request, obj, changes, form):
        return services.agent_update(actor=board_actor(request.user), agent=obj, changes=changes)

    def transition(self, request, obj, name):
        AGENT_TRANSITIONS[name](actor=board_actor(request.user), agent=obj)


@admin.register(AgentApiKey)
class AgentApiKeyAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    """Keys are shown once, when created through the API; only their hash is stored."""

    company_lookup = "agent__company"
    list_display = ("token_prefix", "agent", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("agent__name", "name", "token_prefix")
    list_select_related = ("agent",)


class RunState(DefaultedFilter):
    """The run monitor opens on the live runs (queued or running, an expired lease flagged);
    finished ones are one click away."""

    title = "state"
    parameter_name = "state"
    default = "live"

    def lookups(self, request, model_admin):
        return [
            ("live", "Live"),
            ("expired", "Lease expired"),
            ("finished", "Finished"),
            ("all", "All"),
        ]

    def narrow(self, request, queryset, state: str):
        if state == "live":
            return queryset.filter(status__in=HeartbeatRun.LIVE_STATUSES)
        if state == "expired":
            return queryset.expired()
        if state == "finished":
            return queryset.exclude(status__in=HeartbeatRun.LIVE_STATUSES)
        return queryset


RUN_STATUS_COLOURS = {
    HeartbeatRun.Status.QUEUED: "info",
    HeartbeatRun.Status.RUNNING: "success",
    HeartbeatRun.Status.SUCCEEDED: "success",
    HeartbeatRun.Status.FAILED: "danger",
    HeartbeatRun.Status.TIMED_OUT: "warning",
    HeartbeatRun.Status.CANCELLED: "warning",
}


@admin.register(HeartbeatRun)
class HeartbeatRunAdmin(CompanyScopedAdmin, IssueIdentifierSearch, ReadOnlyAdmin):
    """The run monitor: live runs first, each with its lease counting down (an expired one
    flagged), its agent and the issue it is about by name; cancel and force-release from here,
    through the same services as the API."""

    list_display = (
        "short_id",
        "agent",
        "state",
        "issue",
        "woken_by",
        "lease",
        "started_at",
        "finished_at",
    )
    list_display_links = ("short_id",)
    list_filter = (RunState, "status", "invocation_source")
    search_fields = ("id", "agent__name", "issue_id")  # and an issue's identifier (`DEM-3`)
    list_select_related = ("agent",)
    actions = ["cancel_selected", "force_release_selected"]

    class Media:
        js = ("board/countdown.js",)

    def get_queryset(self, request):
        issues = apps.get_model("issues", "Issue").objects.filter(pk=OuterRef("issue_id"))
        return (
            super()
            .get_queryset(request)
            .annotate(issue_identifier=Subquery(issues.values("identifier")[:1]))
        )

    @admin.display(description="Run", ordering="id")
    def short_id(self, run: HeartbeatRun) -> str:
        return f"…{run.pk[-6:]}"

    @display(description="Status", ordering="status", label=RUN_STATUS_COLOURS)
    def state(self, run: HeartbeatRun) -> str:
        return run.status

    @admin.display(description="Issue", ordering="issue_id")
    def issue(self, run: HeartbeatRun) -> str:
        if not run.issue_id:
            return "—"
        url = reverse("admin:issues_issue_change", args=[run.issue_id])
        return format_html(
            '<a href="{}" class="underline">{}</a>', url, run.issue_identifier or run.issue_id
        )

    @admin.display(description="Woken by", ordering="wake_reason")
    def woken_by(self, run: HeartbeatRun) -> str:
        return wake_reason_html(run.wake_reason)

    @admin.display(description="Lease", ordering="lease_expires_at")
    def lease(self, run: HeartbeatRun) -> str:
        """Live: a countdown to the lease's end (board/countdown.js ticks it); past its end
        while still queued or running: flagged, the run is dead though nobody has said so."""
        if run.is_terminal or run.lease_expires_at is None:
            return "—"
        return format_html(
            '<span data-expires-at="{}" title="{}">{}</span>',
            run.lease_expires_at.isoformat(),
            run.lease_expires_at.isoformat(),
            lease_left(run.lease_expires_at),
        )

    def has_stop_permission(self, request) -> bool:
        # Stopping a run changes the work: who may change issues may (the services check the
        # seat).
        return request.user.has_perm("issues.change_issue")

    @admin.action(description="Cancel the selected runs", permissions=["stop"])
    def cancel_selected(self, request, queryset):
        live = queryset.filter(status__in=HeartbeatRun.LIVE_STATUSES)
        done = each_row(
            self, request, live, lambda actor, run: services.run_cancel(actor=actor, run=run)
        )
        self.message_user(request, f"{len(done)} run(s) cancelled.", messages.SUCCESS)

    @admin.action(
        description="Force-release the locks the selected runs hold", permissions=["stop"]
    )
    def force_release_selected(self, request, queryset):
        from issues.services import issue_force_release  # issues build on agents

        held = apps.get_model("issues", "Issue").objects.filter(checkout_run__in=queryset)
        release_locks(self, request, held, issue_force_release)

    readonly_fields = (
        "agent_link",
        "issue",
        "wake",
        "invocation_source",
        "status_now",
        "times",
        "created_at",
        "started_at",
        "finished_at",
        "cancel_requested_at",
        "lease_acquired_at",
        "lease_renewals",
        "lease_renewed_at",
        "lease",
        "lease_released_at",
        "lease_release_reason",
        "fencing_token",
        "exit_reason",
        "exit_code",
        "error",
        "cost",
        "output",
        "details",
        "id",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("agent_link", "issue"),
                    ("wake", "invocation_source"),
                    "status_now",
                    "times",
                )
            },
        ),
        (
            "Lease",
            {
                "fields": (
                    ("lease_acquired_at", "lease_renewals"),
                    ("lease", "lease_renewed_at"),
                    ("lease_released_at", "lease_release_reason"),
                )
            },
        ),
        ("Outcome", {"fields": (("exit_reason", "exit_code"), "error", "cost", "output")}),
        ("Details", {"fields": ("details",)}),
        ("Record", {"fields": ("id", "fencing_token", "cancel_requested_at")}),
    )
    # Reported as JSON: shown (under Details) only when there is something in them.
    json_fields = ("context", "usage", "result", "checkpoint", "exit_details")

    def get_fieldsets(self, request, obj=None):
        """Outcome once the run has ended; reported JSON only when there is some."""
        if obj is None:
            return self.fieldsets
        hidden = set()
        if not obj.is_terminal:
            hidden.add("Outcome")
        if not any(getattr(obj, name) for name in self.json_fields):
            hidden.add("Details")
        return tuple(entry for entry in self.fieldsets if entry[0] not in hidden)

    @admin.display(description="Status")
    def status_now(self, run: HeartbeatRun) -> str:
        return status_badge(run.status, RUN_STATUS_COLOURS)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            titled(context, obj, f"{obj.agent.name}'s run · {humanized(obj.status)}")
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Agent")
    def agent_link(self, run: HeartbeatRun) -> str:
        url = reverse("admin:agents_agent_change", args=[quote(run.agent_id)])
        return format_html('<a href="{}" class="underline">{}</a>', url, run.agent.name)

    @admin.display(description="Wake reason", ordering="wake_reason")
    def wake(self, run: HeartbeatRun) -> str:
        return wake_reason_html(run.wake_reason)

    @admin.display(description="When")
    def times(self, run: HeartbeatRun) -> str:
        """Queued, started and ended in one line, each relative with the exact time on hover
        (three dates side by side were squeezed onto three lines each)."""
        moments = (
            ("queued", run.created_at),
            ("started", run.started_at),
            ("ended", run.finished_at),
        )
        return format_html_join(
            " · ", "{} {}", ((word, moment_html(at)) for word, at in moments if at is not None)
        )

    @admin.display(description="Cost")
    def cost(self, run: HeartbeatRun) -> str:
        """What the run reported it cost (`costUsd`, else `costCents`) and its tokens."""
        usage = run.usage if isinstance(run.usage, dict) else {}
        parts = []
        usd, cents = usage.get("costUsd"), usage.get("costCents")
        if isinstance(usd, int | float) and not isinstance(usd, bool):
            parts.append(f"${usd:,.2f}")
        elif isinstance(cents, int | float) and not isinstance(cents, bool):
            parts.append(f"${cents / 100:,.2f}")
        tokens = [
            f"{usage[key]:,} {word}"
            for key, word in (("inputTokens", "in"), ("outputTokens", "out"))
            if isinstance(usage.get(key), int) and not isinstance(usage.get(key), bool)
        ]
        if tokens:
            parts.append(" / ".join(tokens) + " tokens")
        return " · ".join(parts) or "—"

    @admin.display(description="Reported data")
    def details(self, run: HeartbeatRun) -> str:
        shown = [(name, getattr(run, name)) for name in self.json_fields if getattr(run, name)]
        if not shown:
            return "—"
        return format_html_join(
            "",
            '<div style="margin-bottom: 0.5rem"><strong>{}</strong><pre style="{}">{}</pre></div>',
            (
                (humanized(name), PRE_WRAP, json.dumps(value, indent=2, sort_keys=True))
                for name, value in shown
            ),
        )

    @admin.display(description="Output")
    def output(self, run: HeartbeatRun) -> str:
        """A process run's output: its end here, the whole log from the API."""
        if not (run.log_tail or run.log_file):
            return "—"
        return format_html(
            '<pre style="{}; max-height: 30em; overflow: auto">{}</pre>'
            '<a href="/api/heartbeat-runs/{}/log" class="underline">The whole log</a>',
            PRE_WRAP,
            run.log_tail,
            run.pk,
        )

    def rows_about_issue(self, queryset, issue_id):
        # Woken for the issue, or held its lock (a run checks out issues it was not woken for).
        company_id = Company.objects.filter(issues__id=issue_id).values_list("pk", flat=True)[0]
        runs = HeartbeatRun.objects.for_issue(issue_id, company_id=company_id)
        return queryset.filter(pk__in=runs.values("pk"))


@admin.register(WakeupRequest)
class WakeupRequestAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "agent", "source", "why", "run", "coalesced")
    list_filter = ("source", "coalesced")
    search_fields = ("agent__name", "run__id", "reason")
    # The `run` column is titled by the run's agent (HeartbeatRun.__str__): joined, not a query
    # a row.
    list_select_related = ("agent", "run__agent")

    readonly_fields = ("why",)

    def get_fields(self, request, obj=None):
        # The page says the reason in words too (the code on hover), where the list does.
        fields = [name for name in super().get_fields(request, obj) if name != "why"]
        return [("why" if name == "reason" else name) for name in fields]

    @admin.display(description="Reason", ordering="reason")
    def why(self, wake: WakeupRequest) -> str:
        return wake_reason_html(wake.reason)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            why = wake_reason_words(obj.reason) if obj.reason else obj.source
            titled(context, obj, f"Wake of {obj.agent.name} ({why})")
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(WakeDelivery)
class WakeDeliveryAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    company_lookup = "run__company"
    list_display = ("sent", "woken", "attempt", "outcome")
    list_filter = ("succeeded",)
    search_fields = ("run__id", "url")
    list_select_related = ("run__agent",)

    @admin.display(description="sent", ordering="created_at")
    def sent(self, delivery: WakeDelivery) -> str:
        return moment_html(delivery.created_at)

    @admin.display(description="woken", ordering="run__agent__name")
    def woken(self, delivery: WakeDelivery) -> str:
        # The run's agent, its URL on hover: the URL alone widened the table past the screen.
        run = delivery.run
        url = reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)])
        return format_html(
            '<a href="{}" title="{}">{}\'s run …{}</a>', url, delivery.url, run.agent, run.pk[-6:]
        )

    @admin.display(description="outcome", ordering="succeeded")
    def outcome(self, delivery: WakeDelivery) -> str:
        state = "succeeded" if delivery.succeeded else "failed"
        badge = status_badge(state, {"succeeded": "success", "failed": "danger"})
        return outcome_html(badge, delivery.status_code, delivery.duration_ms, delivery.error)


# --- Webhook endpoints and their delivery log (DESIGN §9) ---


def events_label(events) -> str:
    """`["*"]` → `All events`; else the event types, comma-separated."""
    if not events:
        return "—"
    if ALL in events:
        return "All events"
    return ", ".join(events)


class WebhookEndpointForm(SameCompanyForm):
    """The endpoint's fields, with the URL and the subscription checked by the service's own
    rules (`services.clean_webhook_fields`) so a refused one is an error on its field, not a
    message after a lost form."""

    events = forms.MultipleChoiceField(
        choices=[(ALL, "every event (*)"), *((name, name) for name in EVENT_TYPES)],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("company", "url", "events", "description", "active")
        labels = {"url": "URL"}

    def clean(self):
        cleaned = super().clean()
        # Only what the save will send: the service checks changed fields, so an endpoint
        # whose URL a later rule refuses may still have its description edited.
        adding = self.instance._state.adding
        fields = {
            name: cleaned[name]
            for name in ("url", "events")
            if name in cleaned and (adding or name in self.changed_data)
        }
        try:
            services.clean_webhook_fields(fields)
        except ValidationFailed as exc:
            details = exc.details if isinstance(exc.details, dict) else {None: exc.message}
            for name, errors in details.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


DELIVERY_STATUS_COLOURS = {
    WebhookDelivery.Status.PENDING: "info",
    WebhookDelivery.Status.SUCCEEDED: "success",
    WebhookDelivery.Status.FAILED: "danger",
}


def outcome_html(badge: str, code: int | None, duration_ms: int | None, error: str) -> str:
    """How an attempt went, in one narrow cell: its badge, the HTTP status and how long it took
    (`200 · 84 ms`), and the error's first words (all of it on hover)."""
    facts = " · ".join(
        str(fact)
        for fact in (code, f"{duration_ms} ms" if duration_ms is not None else None)
        if fact is not None
    )
    return format_html(
        '<span class="whitespace-nowrap">{} {}</span>{}',
        badge,
        facts,
        format_html(
            '<div class="truncate" style="max-width: 14rem" title="{}">{}</div>', error, error
        )
        if error
        else "",
    )


class DeliveryColumns:
    """What one delivery attempt says, in the endpoint's log and in the deliveries' changelist:
    few and narrow columns (when as relative time, the event's id on hover, the outcome as a
    badge), so the table fits a 1280 px screen without a sideways scrollbar."""

    @admin.display(description="sent", ordering="created_at")
    def sent(self, delivery: WebhookDelivery) -> str:
        return moment_html(delivery.created_at)

    @admin.display(description="event", ordering="event_type")
    def event(self, delivery: WebhookDelivery) -> str:
        return format_html('<span title="{}">{}</span>', delivery.event_id, delivery.event_type)

    @admin.display(description="outcome", ordering="status")
    def outcome(self, delivery: WebhookDelivery) -> str:
        return outcome_html(
            status_badge(delivery.status, DELIVERY_STATUS_COLOURS),
            delivery.response_status,
            delivery.duration_ms,
            delivery.error,
        )

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, delivery: WebhookDelivery) -> str:
        return moment_html(delivery.next_attempt_at)


DELIVERY_ATTEMPT = ("sent", "event", "attempt", "outcome", "next_attempt")


class WebhookDeliveryInline(DeliveryColumns, ReadOnlyInline):
    """The endpoint's newest attempts; the whole log is the deliveries' changelist."""

    model = WebhookDelivery
    shown = 20
    fields = DELIVERY_ATTEMPT
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = f"delivery log (newest {shown})"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(CompanyScopedAdmin, ServiceAdmin):
    """Endpoints save and delete through the webhook services. The signing secret is never on a
    page: it is shown once, in the message after creation or after "Rotate secret"."""

    form = WebhookEndpointForm
    list_display = (
        "target",
        "company_name",
        "subscribed",
        "active",
        "disabled_reason",
        "created_at",
    )
    list_filter = ("active", ("company", admin.RelatedOnlyFieldListFilter))
    search_fields = ("url",)
    list_select_related = ("company",)
    readonly_fields = ("id", "disabled_reason", "delivery_log", "created_at", "updated_at")
    add_fields = ("company", "url", "events", "description", "active")
    fields = (
        "id",
        "company",
        "url",
        "events",
        "description",
        ("active", "disabled_reason"),
        "delivery_log",
        ("created_at", "updated_at"),
    )
    inlines = [WebhookDeliveryInline]
    actions = ["reenable_selected", "ping_selected", "rotate_secret"]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else super().get_fields(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Named by what it is for, else by its URL as written (the header capitalised a URL).
        titled(context, obj, obj and (obj.description or obj.url))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, WebhookDeliveryInline) and obj is not None:
            # A busy endpoint has thousands of attempts: the page shows the newest few.
            newest = obj.deliveries.order_by("-created_at", "-id").values("pk")[: inline.shown]
            kwargs["queryset"] = kwargs["queryset"].filter(pk__in=newest)
        return kwargs

    @admin.display(description="URL", ordering="url")
    def target(self, endpoint: WebhookEndpoint) -> str:
        # A long URL breaks anywhere rather than widening the table.
        return format_html('<span style="word-break: break-all">{}</span>', endpoint.url)

    @admin.display(description="Company", ordering="company__name")
    def company_name(self, endpoint: WebhookEndpoint) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', endpoint.company.name)

    @admin.display(description="Events")
    def subscribed(self, endpoint: WebhookEndpoint) -> str:
        return events_label(endpoint.events)

    @admin.display(description="delivery log")
    def delivery_log(self, endpoint: WebhookEndpoint):
        url = reverse("admin:agents_webhookdelivery_changelist")
        count = endpoint.deliveries.count()
        return format_html(
            '<a href="{}?endpoint__id__exact={}">All {} deliveries</a>', url, endpoint.pk, count
        )

    def get_deleted_objects(self, objs, request):
        # The log goes with its endpoint (the service deletes both): deleting an endpoint
        # needs no permission to delete log rows, which no one has.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(WebhookDelivery._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def create(self, request, form):
        return services.webhook_create(
            actor=board_actor(request.user),
            company=form.cleaned_data["company"],
            data=self.model_data(form, "company"),
        )

    def update(self, request, obj, changes, form):
        return services.webhook_update(
            actor=board_actor(request.user), webhook=obj, changes=changes
        )

    def delete(self, actor, obj):
        services.webhook_delete(actor=actor, webhook=obj)

    def response_add(self, request, obj, post_url_continue=None):
        self._show_secret(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def _show_secret(self, request, endpoint: WebhookEndpoint) -> None:
        self.message_user(
            request,
            f"Signing secret of {endpoint.url}: {endpoint.secret} (shown this once: copy it now;"
            " rotate it if it is lost).",
            messages.SUCCESS,
        )

    @admin.action(description="Re-enable the selected endpoints", permissions=["change"])
    def reenable_selected(self, request, queryset):
        def enable(actor, endpoint) -> bool:
            was_active = endpoint.active
            changes = {"active": True}
            return (
                services.webhook_update(actor=actor, webhook=endpoint, changes=changes).active
                and not was_active
            )

        enabled = sum(each_row(self, request, queryset, enable))
        self.message_user(request, f"{enabled} endpoint(s) re-enabled.", messages.SUCCESS)

    @admin.action(description="Send a test ping to the selected endpoints", permissions=["change"])
    def ping_selected(self, request, queryset):
        queued = each_row(
            self,
            request,
            queryset,
            lambda actor, hook: services.webhook_test(actor=actor, webhook=hook),
        )
        self.message_user(
            request, f"Test ping queued to {len(queued)} endpoint(s).", messages.SUCCESS
        )

    @admin.action(description="Rotate the signing secret (one endpoint)", permissions=["change"])
    def rotate_secret(self, request, queryset):
        endpoints = list(queryset[:2])
        if len(endpoints) != 1:
            # Each new secret is shown once: one endpoint at a time, so none is missed.
            self.message_user(request, "Select exactly one endpoint to rotate.", messages.ERROR)
            return
        try:
            endpoint = services.webhook_rotate_secret(
                actor=board_actor(request.user), webhook=endpoints[0]
            )
        except SERVICE_REFUSALS as exc:
            self.message_user(request, refusal_message(exc), messages.ERROR)
            return
        self._show_secret(request, endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DeliveryColumns, CompanyScopedAdmin, ReadOnlyAdmin):
    """The delivery log: written only by the worker and the webhook services."""

    list_display = ("sent", "target", *DELIVERY_ATTEMPT[1:])
    list_filter = ("status", "event_type", ("endpoint", admin.RelatedOnlyFieldListFilter))
    search_fields = ("event_id", "endpoint__url")
    list_select_related = ("endpoint",)
    actions = ["redeliver_selected"]

    @admin.display(description="endpoint", ordering="endpoint__url")
    def target(self, delivery: WebhookDelivery) -> str:
        # Its description if it has one, else its URL, which breaks anywhere rather than
        # widening the table.
        endpoint = delivery.endpoint
        return format_html(
            '<span style="word-break: break-all" title="{}">{}</span>',
            endpoint.url,
            endpoint.description or endpoint.url,
        )

    def has_redeliver_permission(self, request) -> bool:
        # Redelivering writes to the endpoint's log: who may change endpoints may do it (the
        # service still checks the seat).
        return request.user.has_perm("agents.change_webhookendpoint")

    @admin.action(description="Redeliver the selected events now", permissions=["redeliver"])
    def redeliver_selected(self, request, queryset):
        queued = each_row(
            self,
            request,
            queryset.order_by("created_at", "id"),
            lambda actor, delivery: services.webhook_redeliver(actor=actor, delivery=delivery),
        )
        self.message_user(request, f"{len(queued)} redelivery(ies) queued.", messages.SUCCESS)
