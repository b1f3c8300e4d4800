"""@-mentions in comments: `@Name` (case-insensitive) and `[@Name](agent://agt_...)` links."""

from __future__ import annotations

import re

from agents.models import Agent

AGENT_LINK = re.compile(r"\[@[^\]]*\]\(agent://(agt_[0-9a-z]{26})\)")


def mentioned_agents(body: str, company_id: str) -> list[Agent]:
    """The agents of the company a comment mentions, in the order they first appear."""
    if "@" not in body:
        return []
    found: dict[str, tuple[int, Agent]] = {}
    agents = list(Agent.objects.for_company(company_id))
    by_id = {agent.pk: agent for agent in agents}
    for match in AGENT_LINK.finditer(body):
        if match.group(1) in by_id:
            found.setdefault(match.group(1), (match.start(), by_id[match.group(1)]))
    plain = AGENT_LINK.sub(lambda m: " " * len(m.group(0)), body)
    # Longest names first, blanking each match, so "@Eng Lead" is not also "@Eng".
    for agent in sorted(agents, key=lambda a: len(a.name), reverse=True):
        pattern = rf"(?<![\w@])@{re.escape(agent.name)}(?![\w-])"
        for match in re.finditer(pattern, plain, re.IGNORECASE):
            found.setdefault(agent.pk, (match.start(), agent))
            plain = plain[: match.start()] + " " * len(match.group(0)) + plain[match.end() :]
    return [agent for _, agent in sorted(found.values(), key=lambda pair: pair[0])]
