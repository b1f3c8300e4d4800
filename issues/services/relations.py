"""What an issue (or goal) may point at: its own company's records, one assignee, no cycles."""

from __future__ import annotations

from typing import Any

from companies.models import Company
from paperclip.errors import (
    Unprocessable,
    ValidationFailed,
)
from paperclip.naming import camel


def check_same_company(company_id: str, values: dict[str, Any]) -> None:
    """Every related record an issue points at belongs to the issue's company.

    The API's scoped fields already refuse foreign ids; this keeps every other caller (the
    admin, commands, later APIs) from linking across tenants.
    """
    for name, value in values.items():
        related = value if isinstance(value, (list, tuple, set)) else [value]
        for item in related:
            item_company = getattr(item, "company_id", None)
            if item_company is not None and item_company != company_id:
                raise ValidationFailed(
                    "Validation failed",
                    code="validation_error",
                    details={camel(name): ["Must belong to the issue's company."]},
                )
    user = values.get("assignee_user")
    if user is not None and not user.memberships.filter(company_id=company_id).exists():
        raise ValidationFailed(
            "Validation failed",
            code="validation_error",
            details={"assigneeUserId": ["Must be a member of the issue's company."]},
        )


def check_assignees(changes: dict[str, Any]) -> None:
    """At most one assignee: naming one replaces the other; naming both is a 422."""
    agent, user = changes.get("assignee_agent"), changes.get("assignee_user")
    if agent is not None and user is not None:
        raise Unprocessable(
            "An issue has at most one assignee: an agent or a user", code="one_assignee"
        )
    if agent is not None and "assignee_user" not in changes:
        changes["assignee_user"] = None
    if user is not None and "assignee_agent" not in changes:
        changes["assignee_agent"] = None
    if agent is not None and agent.status == agent.Status.TERMINATED:
        raise Unprocessable("Cannot assign a terminated agent", code="agent_terminated")


def lock_company_graph(company_id: str) -> None:
    """Serialize the changes that must keep a company's graphs (parents, dependencies) acyclic:
    the company row's lock, held until the transaction ends."""
    Company.objects.select_for_update().filter(pk=company_id).values_list("pk").first()


def refuse_cycle(record, parent, *, kind: str) -> None:
    """A record (issue or goal) may not become its own ancestor through `parent`."""
    lock_company_graph(record.company_id)
    node, depth = parent, 0
    while node is not None and depth < 1000:
        if node.pk == record.pk:
            raise ValidationFailed(
                "Validation failed",
                code="validation_error",
                details={"parentId": [f"{kind} cannot be its own ancestor."]},
            )
        node, depth = node.parent, depth + 1


def refuse_dependency_cycle(issue, dependencies) -> None:
    """`issue` may not wait, directly or through others, on an issue that waits on it.

    Walks the dependency graph from the new dependencies one level per query; the graph of one
    company is small, and a cycle found anywhere is refused (422 `dependency_cycle`).
    Dependency changes in one company queue on its row, so two concurrent edits (a on b, b on a)
    cannot each pass before the other commits.
    """
    lock_company_graph(issue.company_id)
    through = type(issue).dependencies.through
    frontier = {dependency.pk for dependency in dependencies}
    seen: set[str] = set()
    while frontier:
        if issue.pk in frontier:
            raise Unprocessable(
                "Dependencies would form a cycle",
                code="dependency_cycle",
                details={"issueId": issue.pk, "dependencyIds": sorted(d.pk for d in dependencies)},
            )
        seen |= frontier
        frontier = (
            set(
                through.objects.filter(from_issue_id__in=frontier).values_list(
                    "to_issue_id", flat=True
                )
            )
            - seen
        )
