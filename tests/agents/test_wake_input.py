"""Bad wake input answers 400 naming the field, before anything is queued or stored."""

from __future__ import annotations

import pytest

from agents.models import Agent, HeartbeatRun


@pytest.mark.parametrize(
    "payload",
    [{"taskId": "x" * 100}, {"taskId": 5}, {"issueId": "DEM-1"}, {"commentId": "iss_nope"}],
)
def test_a_wake_payload_with_a_malformed_id_is_400(board, agent, payload):
    response = board.post(f"/api/agents/{agent.pk}/wakeup", {"payload": payload}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["details"]["payload"])) == ("validation_error", list(payload))
    assert not HeartbeatRun.objects.exists()


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/wake", 42, "http://x/" + "a" * 600])
def test_an_http_agent_with_an_unusable_wake_url_is_400(board, company, url):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Hooked", "adapterType": "http", "adapterConfig": {"url": url}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["details"] == {"adapterConfig": {"url": ["Enter a valid http(s) URL."]}}
    assert not Agent.objects.filter(name="Hooked").exists()


def test_an_http_agent_without_a_url_is_accepted_and_polls(board, company):
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Poller", "adapterType": "http", "adapterConfig": {}},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["adapterConfig"] == {}
