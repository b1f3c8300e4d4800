from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "issues"
    verbose_name = "Issues"

    def ready(self):
        from issues.services.teams import assign_waiting_work
        from paperclip.availability import on_agent_available

        # Work queued for a team without an available agent goes out when one appears.
        on_agent_available(assign_waiting_work)
