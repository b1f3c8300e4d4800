from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "issues"
    verbose_name = "Issues"

    def ready(self):
        from issues.events import emit_logged_change
        from issues.services.teams import assign_waiting_work
        from paperclip.availability import on_agent_available
        from paperclip.events import on_change_logged

        # Work queued for a team without an available agent goes out when one appears.
        on_agent_available(assign_waiting_work)
        # Approvals and agents are logged by `companies`; their domain events are ours.
        on_change_logged(emit_logged_change)
        # Whoever deletes what issues show (a service, the admin, a cascade), their answers
        # change: a new version for each, so their ETags and their lists' versions move.
        from django.db.models.signals import pre_delete

        from agents.models import Team
        from issues.models import Goal, Issue, Label, Project

        for shown in (Issue, Project, Goal, Team, Label):
            pre_delete.connect(touch_issues_showing, sender=shown, dispatch_uid=f"touch-{shown}")


def touch_issues_showing(sender, instance, **kwargs) -> None:
    from issues.models import Issue

    Issue.objects.showing(instance).touch()
