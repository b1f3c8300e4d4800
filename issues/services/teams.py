"""Work given to a team (DESIGN §8): which of its agents takes it."""

from __future__ import annotations

from django.db.models import Count, Q

from agents.models import Agent, Team
from issues.models import OPEN_STATUSES
from paperclip.errors import Unprocessable

# Agents that can take work now: not paused, failing, terminated or awaiting approval.
AVAILABLE_STATUSES = (Agent.Status.ACTIVE, Agent.Status.IDLE, Agent.Status.RUNNING)


def team_pick(team: Team) -> Agent | None:
    """The team's available agent with the fewest open tasks; ties go to the longest-serving
    (the earliest hired). None when the team has no available agent.

    One query: the open load is counted next to each agent.
    """
    return (
        Agent.objects.filter(team=team, status__in=AVAILABLE_STATUSES)
        .annotate(
            open_load=Count("assigned_issues", filter=Q(assigned_issues__status__in=OPEN_STATUSES))
        )
        .order_by("open_load", "created_at", "id")
        .first()
    )


def check_on_team(agent: Agent, team: Team) -> None:
    """An agent named together with a team must be on it (422 otherwise)."""
    if agent.team_id != team.pk:
        raise Unprocessable(
            "The agent is not on the team",
            code="agent_not_on_team",
            details={"assignedAgentId": agent.pk, "assignedTeamId": team.pk},
        )
