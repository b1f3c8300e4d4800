"""Work given to a team (DESIGN §8): which of its agents takes it."""

from __future__ import annotations

from django.db.models import Count, Q

from agents.models import Agent, Team
from issues.models import OPEN_STATUSES, Issue, Status, StatusReason
from issues.services.verbs import issue_assign
from paperclip.actors import SYSTEM
from paperclip.errors import DomainError, Unprocessable

# Agents that can take work now: not paused, failing, terminated or awaiting approval.
AVAILABLE_STATUSES = (Agent.Status.ACTIVE, Agent.Status.IDLE, Agent.Status.RUNNING)
# Where work waiting for an agent sits (the /v1 `queued` state).
QUEUED_STATUSES = (Status.BACKLOG, Status.TODO)


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


def assign_waiting_work(*, agent: Agent) -> list[Issue]:
    """Tasks queued for `agent`'s team because none of its agents was available
    (`no_available_agent`) go to the team's available agents now, oldest task first, each to
    the one with the fewest open tasks at that moment (DESIGN §8). Called (through
    `paperclip.availability`) when an agent is hired, resumed or moved onto a team; by the
    system, as the orchestrator it is. Nothing happens while the agent cannot take work.
    """
    if agent.team_id is None or agent.status not in AVAILABLE_STATUSES:
        return []
    waiting = Issue.objects.filter(
        team_id=agent.team_id,
        status__in=QUEUED_STATUSES,
        assignee_agent__isnull=True,
        assignee_user__isnull=True,
        status_reason=StatusReason.NO_AVAILABLE_AGENT,
    ).order_by("created_at", "id")
    assigned = []
    for issue in waiting:
        pick = team_pick(agent.team)
        if pick is None:
            break
        try:
            assigned.append(issue_assign(actor=SYSTEM, issue=issue, agent=pick))
        except DomainError:
            # Assigned or cancelled by someone else since it was read (issue_assign re-checks
            # under the row lock, in its own savepoint): nothing to hand out.
            continue
    return assigned
