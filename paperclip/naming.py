"""Field names as clients and the activity log use (`assignee_agent_id` → `assigneeAgentId`)."""

from __future__ import annotations


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
