"""Agents in the admin: status moves only through the pause/resume/terminate services."""

from __future__ import annotations

from django.contrib import admin

from agents import services
from agents.models import Agent, AgentApiKey, HeartbeatRun, Team, WakeDelivery, WakeupRequest
from companies.admin import (
    CompanyScopedAdmin,
    IssueIdentifierSearch,
    ReadOnlyAdmin,
    ServiceAdmin,
    ServiceFSMAdmin,
)
from companies.authentication import board_actor
from companies.models import Company

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


@admin.register(Agent)
class AgentAdmin(CompanyScopedAdmin, ServiceFSMAdmin):
    fsm_fields = ["status"]
    list_display = ("name", "company", "role", "status", "reports_to", "last_heartbeat_at")
    list_filter = ("status", "role", "company")
    search_fields = ("name", "title")
    list_select_related = ("company", "reports_to")
    readonly_fields = (
        "id",
        "spent_monthly_cents",
        "last_heartbeat_at",
        "created_at",
        "updated_at",
    )

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


@admin.register(HeartbeatRun)
class HeartbeatRunAdmin(CompanyScopedAdmin, IssueIdentifierSearch, ReadOnlyAdmin):
    list_display = (
        "id",
        "agent",
        "status",
        "wake_reason",
        "issue_id",
        "lease_expires_at",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "invocation_source")
    search_fields = ("id", "agent__name", "issue_id")  # and an issue's identifier (`DEM-3`)
    list_select_related = ("agent",)

    def rows_about_issue(self, queryset, issue_id):
        # Woken for the issue, or held its lock (a run checks out issues it was not woken for).
        company_id = Company.objects.filter(issues__id=issue_id).values_list("pk", flat=True)[0]
        runs = HeartbeatRun.objects.for_issue(issue_id, company_id=company_id)
        return queryset.filter(pk__in=runs.values("pk"))


@admin.register(WakeupRequest)
class WakeupRequestAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "agent", "source", "reason", "run", "coalesced")
    list_filter = ("source", "coalesced")
    search_fields = ("agent__name", "run__id", "reason")
    list_select_related = ("agent",)


@admin.register(WakeDelivery)
class WakeDeliveryAdmin(CompanyScopedAdmin, ReadOnlyAdmin):
    company_lookup = "run__company"
    list_display = ("created_at", "run", "attempt", "url", "status_code", "succeeded")
    list_filter = ("succeeded",)
    search_fields = ("run__id", "url")
