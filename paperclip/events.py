"""A change was logged: the issues app turns it into a domain event (DESIGN §9).

`companies.services.log_change` writes the activity rows of approvals and agents; the domain
events (and the `/v1` objects their payloads carry) are the issues app's, and imports run
issues → agents → companies. So `log_change` announces each row here, in its transaction, and
`issues.apps` registers the listener, as `paperclip.availability` does for available agents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_listeners: list[Callable[..., Any]] = []


def on_change_logged(listener: Callable[..., Any]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def change_logged(*, actor: Any, entity: Any, activity: Any) -> None:
    """Tell the apps that `actor` changed `entity`, as the activity row `activity` says."""
    for listener in _listeners:
        listener(actor=actor, entity=entity, activity=activity)
