"""The `/v1` view of the issue lifecycle (DESIGN §2): one total projection of the canonical
statuses onto 003's task states, and back as a query.

| canonical                        | /v1       |
|----------------------------------|-----------|
| backlog; todo without assignee   | queued    |
| todo with an assignee            | assigned  |
| in_progress                      | running   |
| in_review                        | review    |
| blocked                          | handoff   |
| done / failed / cancelled        | the same  |

And the lifecycle verbs each state accepts (`allowed_actions`), which the verbs check and a
refused verb names.
"""

from __future__ import annotations

from django.db.models import Q

from issues.models import Issue, Status
from paperclip.errors import InvalidTransition

TASK_STATES = (
    "queued", "assigned", "running", "review", "handoff", "done", "failed", "cancelled",
)  # fmt: skip

_UNASSIGNED = Q(assignee_agent__isnull=True, assignee_user__isnull=True)
_SAME = {
    Status.IN_PROGRESS: "running",
    Status.IN_REVIEW: "review",
    Status.BLOCKED: "handoff",
    Status.DONE: "done",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}
_WHERE = {
    "queued": Q(status=Status.BACKLOG) | (Q(status=Status.TODO) & _UNASSIGNED),
    "assigned": Q(status=Status.TODO) & ~_UNASSIGNED,
    **{state: Q(status=status) for status, state in _SAME.items()},
}


def task_state(status: str, assigned: bool) -> str:
    """The `/v1` state of an issue in `status`, with or without an assignee."""
    if status == Status.BACKLOG or (status == Status.TODO and not assigned):
        return "queued"
    if status == Status.TODO:
        return "assigned"
    return _SAME[status]


def state_of(issue: Issue) -> str:
    assigned = issue.assignee_agent_id is not None or issue.assignee_user_id is not None
    return task_state(issue.status, assigned)


# The verbs (DESIGN §8) a task in each state accepts: assign takes queued work; reassign moves
# work that has an agent; review decides work in review; cancel stops anything open. Terminal
# tasks accept none (the board's reopen is `/api`'s, not a verb).
ACTIONS = {
    "queued": ("assign", "cancel"),
    "assigned": ("reassign", "cancel"),
    "running": ("reassign", "cancel"),
    "review": ("reassign", "review", "cancel"),
    "handoff": ("reassign", "cancel"),
    "done": (),
    "failed": (),
    "cancelled": (),
}


def allowed_actions(issue: Issue) -> list[str]:
    """The verbs the issue's state accepts, as a refused verb names them (`allowedActions`)."""
    return list(ACTIONS[state_of(issue)])


def in_states(states: list[str]) -> Q:
    """The issues whose `/v1` state is one of `states` (each one of TASK_STATES)."""
    condition = Q(pk__in=[])
    for state in states:
        condition |= _WHERE[state]
    return condition


def refused(issue: Issue, action: str) -> InvalidTransition:
    """A verb `issue`'s task state does not accept, said in `/v1`'s terms (DESIGN §8):
    `invalid_transition` with `{status, action, allowedActions}`."""
    state = state_of(issue)
    return InvalidTransition(
        f"Cannot {action} a task that is {state}",
        details={"status": state, "action": action, "allowedActions": allowed_actions(issue)},
    )
