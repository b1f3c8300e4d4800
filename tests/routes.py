"""The route table of an API dialect, read from the URL resolver, so a test over "every route"
covers a new endpoint without being edited: `(method, "/api/issues/{issue}/comments/{comment}")`.

A path's `{pk}` is named after the segment before it (`.../comments/{pk}` → `{comment}`),
`{company_pk}`, `{issue_pk}` and `{delivery_pk}` after their object; other keywords keep their
names (`{key}`).
"""

from __future__ import annotations

import re

from django.urls import get_resolver
from django.urls.resolvers import URLResolver

KIND_OF_SEGMENT = {
    "companies": "company",
    "agents": "agent",
    "heartbeat-runs": "run",
    "runs": "run",
    "issues": "issue",
    "comments": "comment",
    "attachments": "attachment",
    "approvals": "approval",
    "goals": "goal",
    "projects": "project",
    "labels": "label",
    "teams": "team",
    "webhooks": "webhook",
}
_KEYWORD = re.compile(r"\(\?P<(\w+)>\[\^/\]\+\)")


def _patterns(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif getattr(pattern.callback, "actions", None):
            yield prefix + str(pattern.pattern), pattern.callback.actions


def routes(dialect: str) -> list[tuple[str, str]]:
    """(method, template) of every route of `dialect` ("api", "v1") with an id in its path."""
    table = []
    for regex, actions in _patterns(get_resolver().url_patterns):
        if not regex.startswith(f"{dialect}/") or "(?P<" not in regex:
            continue
        path = "/" + _KEYWORD.sub(r"{\1}", regex).replace("^", "").replace("/?$", "")
        segments = path.split("/")
        if "{pk}" in segments:
            kind = KIND_OF_SEGMENT[segments[segments.index("{pk}") - 1]]
            path = path.replace("{pk}", "{" + kind + "}")
        path = path.replace("{company_pk}", "{company}").replace("{issue_pk}", "{issue}")
        path = path.replace("{delivery_pk}", "{delivery}")
        table.extend((method, path) for method in actions)
    return sorted(table)
