"""Who is calling: the one object every permission and queryset scope reads.

Authentication classes (agents' API keys, board tokens, admin sessions) put an `Actor` in
`request.auth`, so views, services and querysets never inspect `request.user` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agents.models import Agent
    from companies.models import User


@dataclass(frozen=True)
class Actor:
    type: Literal["agent", "user", "system"]
    id: str
    agent: Agent | None = None
    user: User | None = None
    # Companies the caller belongs to, and in which of them it may write.
    company_ids: frozenset[str] = field(default_factory=frozenset)
    writable_company_ids: frozenset[str] = field(default_factory=frozenset)
    is_instance_admin: bool = False
    # The run id the caller sent in `X-Paperclip-Run-Id` (agents only), and on writes the run
    # itself, checked to be this agent's (agents.authentication).
    run_id: str | None = None
    run: Any = None
    # What the caller authenticated with: an agent key, a board token or a run (a run token);
    # None for an admin session and the system.
    credential: Any = None

    @property
    def is_agent(self) -> bool:
        return self.type == "agent"

    @property
    def is_board(self) -> bool:
        return self.type == "user"

    def sees_company(self, company_id: str) -> bool:
        return self.is_instance_admin or company_id in self.company_ids

    def can_write(self, company_id: str) -> bool:
        return self.is_instance_admin or company_id in self.writable_company_ids

    def activity_fields(self) -> dict[str, Any]:
        """The actor columns of an activity row."""
        return {"actor_type": self.type, "actor_id": self.id, "run_id": self.run_id}


SYSTEM = Actor(type="system", id="system", is_instance_admin=True)
