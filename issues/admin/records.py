"""Goals, projects and labels in the admin: saved and deleted through the record services, so
each write is logged like the API's."""

from __future__ import annotations

from django.contrib import admin, messages

from companies.admin import SERVICE_REFUSALS, CompanyScopedAdmin, ServiceAdmin, refusal_message
from companies.authentication import board_actor
from issues import services
from issues.models import Goal, Label, Project


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

    def delete(self, actor, obj):
        services.record_delete(actor=actor, record=obj)


@admin.register(Goal)
class GoalAdmin(RecordAdmin):
    list_display = ("title", "company", "level", "status", "parent", "owner_agent")
    list_filter = ("level", "status", "company")
    search_fields = ("title",)
    list_select_related = ("company", "parent", "owner_agent")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Project)
class ProjectAdmin(RecordAdmin):
    list_display = ("name", "company", "status", "paused_at", "lead_agent", "target_date")
    list_filter = ("status", ("paused_at", admin.EmptyFieldListFilter), "company")
    search_fields = ("name",)
    list_select_related = ("company", "lead_agent")
    filter_horizontal = ("goals",)
    readonly_fields = ("paused_at", "pause_reason", "created_at", "updated_at")
    actions = ["pause_selected", "resume_selected"]

    @admin.action(description="Pause the selected projects (their issues refuse checkout)")
    def pause_selected(self, request, queryset):
        self._apply(request, queryset, services.project_pause, "paused")

    @admin.action(description="Resume the selected projects")
    def resume_selected(self, request, queryset):
        self._apply(request, queryset, services.project_resume, "resumed")

    def _apply(self, request, queryset, service, done: str) -> None:
        actor = board_actor(request.user)
        changed = 0
        for project in queryset:
            try:
                was_paused = project.is_paused
                changed += service(actor=actor, project=project).is_paused != was_paused
            except SERVICE_REFUSALS as exc:
                self.message_user(request, f"{project}: {refusal_message(exc)}", messages.ERROR)
        self.message_user(request, f"{changed} project(s) {done}.", messages.SUCCESS)


@admin.register(Label)
class LabelAdmin(RecordAdmin):
    list_display = ("name", "company", "color")
    list_filter = ("company",)
    search_fields = ("name",)
    list_select_related = ("company",)
