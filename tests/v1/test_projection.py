"""The status projection (DESIGN §2) read from the other side: what a `/v1` verb does is what
`/api` shows, so both dialects are one issue."""

from __future__ import annotations

import pytest

from issues.models import Status
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db


def v1(company, issue, verb: str) -> str:
    return f"/v1/companies/{company.pk}/issues/{issue.pk}/{verb}"


def api_view(board, issue) -> tuple[str, str | None]:
    body = board.get(f"/api/issues/{issue.pk}").json()
    return body["status"], body["assigneeAgentId"]


def test_v1_verbs_show_on_api_in_its_own_vocabulary(board, company, agent):
    peer = factories.AgentFactory(company=company, name="Peer")
    issue = factories.IssueFactory(company=company, status=Status.BACKLOG)
    seen = []

    for verb, body in [
        ("assign", {"agentId": agent.pk}),  # queued → assigned
        ("reassign", {"toAgentId": peer.pk, "reason": "fit"}),  # → assigned to the peer
        ("cancel", {"reason": "done with it"}),  # → cancelled
    ]:
        response = board.post(v1(company, issue, verb), body, format="json")
        assert response.status_code == 200, response.json()
        seen.append(api_view(board, issue))

    assert seen == [
        ("todo", wire(agent)),
        ("todo", wire(peer)),
        ("cancelled", wire(peer)),
    ]


def test_a_v1_claim_and_complete_show_on_api_as_in_progress_then_in_review(
    board, agent_client, company, agent
):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    url = f"/v1/companies/{company.pk}/issues/{issue.pk}/runs"

    run = agent_client.post(url, {}, format="json").json()["data"]
    running = api_view(board, issue)
    agent_client.post(f"{url}/{run['id']}/complete", {"summary": "ok"}, format="json")

    assert running == ("in_progress", wire(agent))
    assert board.get(f"/api/issues/{issue.pk}").json()["checkoutRunId"] is None
    assert api_view(board, issue)[0] == "in_review"
