"""Reference 003's curl examples, as written (ids aside): `curl -d` without a Content-Type sends
the JSON labelled as a form, and `/v1` reads it as the JSON it is."""

from __future__ import annotations

import json

import pytest

from issues.models import Issue, Status
from tests import factories

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"  # what curl -d sends by default


def post_like_curl(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type=FORM)


def test_003s_examples_run_one_after_another(board, company, agent):
    other = factories.AgentFactory(company=company, name="Writer")
    team = factories.TeamFactory(company=company)
    agent.team = team
    agent.save(update_fields=["team"])
    blocker = factories.IssueFactory(company=company, status=Status.DONE)
    v1 = f"/v1/companies/{company.pk}"

    listed = board.get(f"{v1}/issues?status=running")
    created = board.post(
        f"{v1}/issues",
        {
            "title": "Rewrite the hero section for the new campaign",
            "description": "Short, punchy, align with brand voice doc.",
            "assignedTeamId": team.pk,
            "budget": {"perTaskUsd": 1.50},
            "labels": ["marketing", "priority:medium"],
            "dependencies": [blocker.pk],
        },
        format="json",
    )
    task = created.json()["data"]
    queued = factories.IssueFactory(company=company, status=Status.BACKLOG)
    assigned = post_like_curl(board, f"{v1}/issues/{queued.pk}/assign", {"agentId": agent.pk})
    reassigned = post_like_curl(
        board, f"{v1}/issues/{task['id']}/reassign", {"toAgentId": other.pk, "reason": "better fit"}
    )
    commented = post_like_curl(
        board,
        f"{v1}/issues/{task['id']}/comments",
        {
            "text": "Switching this to Opus because the draft needs more care.",
            "author": "user:alice",
        },
    )
    runs = board.get(f"{v1}/issues/{task['id']}/runs")
    bulk = post_like_curl(
        board,
        f"{v1}/issues/bulk",
        {"ids": [task["id"], queued.pk], "op": "cancel", "args": {"reason": "wrap up"}},
    )
    cancelled = post_like_curl(
        board, f"{v1}/issues/{queued.pk}/cancel", {"reason": "no longer needed"}
    )

    assert listed.status_code == 200
    assert created.status_code == 201, created.json()
    assert (task["status"], task["assignedAgentId"], task["labels"]) == (
        "assigned",
        agent.pk,
        ["marketing", "priority:medium"],
    )
    assert task["budget"] == {"perTaskUsd": 1.5, "spent": {"usd": 0.0}}
    assert assigned.json()["data"]["status"] == "assigned"
    assert reassigned.json()["data"]["assignedAgentId"] == other.pk
    assert commented.status_code == 201, commented.json()
    assert (runs.status_code, runs.json()["data"]) == (200, [])
    assert [(o["id"], o["ok"]) for o in bulk.json()["data"]] == [
        (task["id"], True),
        (queued.pk, True),
    ]
    # cancelled by the bulk already: a second cancel is refused in task terms
    assert cancelled.status_code == 409
    assert cancelled.json()["error"]["code"] == "invalid_transition"
    assert Issue.objects.get(pk=queued.pk).status == Status.CANCELLED


def test_a_form_labelled_body_that_is_not_json_is_400(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.post(
        f"/v1/companies/{company.pk}/issues/{issue.pk}/cancel",
        data="reason=no+longer+needed",
        content_type=FORM,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
