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
