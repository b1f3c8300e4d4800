"""@-mentions in comments: `@Name` (case-insensitive) and `[@Name](agent://<id>)` links, the id in
either form (Paperclip's clients write the UUID)."""

from __future__ import annotations

import re

from agents.models import Agent
from paperclip.ids import EITHER_FORM, parse_id

AGENT_LINK = re.compile(rf"\[@[^\]]*\]\(agent://({EITHER_FORM})\)")


def mentioned_agents(body: str, company_id: str) -> list[Agent]:
    """The agents of the company a comment mentions, in the order they first appear."""
    if "@" not in body:
        return []
    found: dict[str, tuple[int, Agent]] = {}
    agents = list(Agent.objects.for_company(company_id))
    by_id = {agent.pk: agent for agent in agents}
    for match in AGENT_LINK.finditer(body):
        agent_id = parse_id(match.group(1), "agt")
        if agent_id in by_id:
            found.setdefault(agent_id, (match.start(), by_id[agent_id]))
    plain = AGENT_LINK.sub(lambda m: " " * len(m.group(0)), body)
    # Longest names first, blanking each match, so "@Eng Lead" is not also "@Eng".
    for agent in sorted(agents, key=lambda a: len(a.name), reverse=True):
        pattern = rf"(?<![\w@])@{re.escape(agent.name)}(?![\w-])"
        for match in re.finditer(pattern, plain, re.IGNORECASE):
            found.setdefault(agent.pk, (match.start(), agent))
            plain = plain[: match.start()] + " " * len(match.group(0)) + plain[match.end() :]
    return [agent for _, agent in sorted(found.values(), key=lambda pair: pair[0])]
