"""An agent became able to take work: work that waited for one is handed out (DESIGN §8).

The agents app knows when (an agent hired, resumed, moved onto a team); the issues app owns the
waiting work and registers what to do (`issues.apps`). Imports run issues → agents, so the agent
services announce it here instead of calling the issues services; the call stays explicit in
each service, in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_listeners: list[Callable[..., Any]] = []


def on_agent_available(listener: Callable[..., Any]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def agent_available(agent: Any) -> None:
    """Tell the apps that `agent` may take work now (each decides whether it really can)."""
    for listener in _listeners:
        listener(agent=agent)
