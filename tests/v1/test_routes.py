"""Every `/v1` route (read from the resolver, so a new one is covered): either id form finds the
same object, `/v1` writes only prefixed ids, and another company's objects answer 404 and stay
as they were (DESIGN §4, §5, §8)."""

from __future__ import annotations

import re

import pytest
from django.db import transaction

from agents.models import HeartbeatRun, Team, WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from issues.models import Comment, Issue
from paperclip.ids import as_uuid
from tests import factories
from tests.routes import routes

pytestmark = pytest.mark.django_db

ROUTES = routes("v1")
READS = [route for route in ROUTES if route[0] == "get"]
WRITES = [route for route in ROUTES if route[0] != "get"]
UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def world(board, company, agent, agent_client) -> dict[str, str]:
    """A task of `company` with a team, a label, a dependency, a comment and a claimed run, and
    a webhook with a queued ping, made through `/v1`: the stored id of each."""
    v1 = f"/v1/companies/{company.pk}"
    team = board.post(f"{v1}/teams", {"name": "Web"}, format="json").json()["data"]
    webhook = board.post(
        f"{v1}/webhooks", {"url": "https://hooks.example.com/v1", "events": ["*"]}, format="json"
    ).json()["data"]
    ping = board.post(f"{v1}/webhooks/{webhook['id']}/test").json()["data"]
    agent.team_id = team["id"]
    agent.save(update_fields=["team"])
    blocker = factories.IssueFactory(company=company, status="done")
    task = board.post(
        f"{v1}/issues",
        {
            "title": "Rewrite the hero section",
            "assignedAgentId": agent.pk,
            "assignedTeamId": team["id"],
            "labels": ["marketing"],
            "dependencies": [blocker.pk],
        },
        format="json",
    )
    assert task.status_code == 201, task.json()
    task_id = task.json()["data"]["id"]
    comment = board.post(f"{v1}/issues/{task_id}/comments", {"text": "Go"}, format="json")
    run = agent_client.post(f"{v1}/issues/{task_id}/runs", {}, format="json")
    assert (comment.status_code, run.status_code) == (201, 201), (comment.json(), run.json())
    return {
        "company": company.pk,
        "issue": task_id,
        "team": team["id"],
        "run": run.json()["data"]["id"],
        "webhook": webhook["id"],
        "delivery": ping["id"],
    }


def test_the_route_table_covers_tasks_teams_runs_and_webhooks():
    placeholders = set(re.findall(r"\{(\w+)\}", " ".join(path for _, path in ROUTES)))

    assert placeholders == {"company", "issue", "team", "run", "webhook", "delivery"}
    assert len(READS) >= 7 and len(WRITES) >= 15


def in_form(world: dict[str, str], form: str) -> dict[str, str]:
    return {name: as_uuid(pk) if form == "uuid" else pk for name, pk in world.items()}


@pytest.mark.parametrize(("method", "template"), READS, ids=[p for _, p in READS])
def test_every_read_finds_the_same_object_by_either_form_and_writes_prefixed_ids(
    board, world, method, template
):
    by_prefix = board.get(template.format(**in_form(world, "prefixed")))
    by_uuid = board.get(template.format(**in_form(world, "uuid")))

    assert by_prefix.status_code == by_uuid.status_code == 200, by_uuid.json()
    assert by_uuid.json()["data"] == by_prefix.json()["data"]
    assert not UUID_IN_TEXT.search(by_uuid.content.decode()), by_uuid.content


@pytest.mark.parametrize(("method", "template"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_every_write_finds_its_object_by_either_form(board, agent_client, world, method, template):
    """Each form on the same world (the first attempt rolled back): the same answer, never 404,
    and no UUID written back. Agent-plane routes are the agent's, the rest the board's."""
    client = agent_client if "/runs" in template else board
    answers = {}
    for form in ("prefixed", "uuid"):
        with transaction.atomic():
            response = getattr(client, method)(template.format(**in_form(world, form)), {})
            transaction.set_rollback(True)
        assert not UUID_IN_TEXT.search(response.content.decode()), response.content
        answers[form] = response.status_code

    assert answers["uuid"] == answers["prefixed"] != 404, answers


def db_state() -> dict[str, list]:
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (
            Issue,
            HeartbeatRun,
            Comment,
            Team,
            WebhookEndpoint,
            WebhookDelivery,
            ActivityEvent,
        )
    }


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_another_companys_board_and_agent_get_404_on_every_route_and_change_nothing(
    other_board, other_client, world, method, template
):
    url = template.format(**world)
    before = db_state()

    for client in (other_board, other_client):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"

    assert db_state() == before


@pytest.mark.parametrize(
    "template", sorted({path for _, path in ROUTES + routes("api")}), ids=lambda path: path
)
def test_options_on_every_route_of_both_dialects_describes_it(board, world, template):
    """DRF answers OPTIONS from the view's serializer; a view without one was a 500 (found by
    make fuzz)."""
    ids = {**world, "agent": "agt_x", "comment": "cmt_x", "goal": "gol_x", "project": "prj_x"}
    ids |= {"label": "lbl_x", "attachment": "att_x", "approval": "apr_x", "key": "plan"}

    response = board.options(template.format(**ids))

    # 200, or 404 where the placeholder names nothing in this world (never a 5xx)
    assert response.status_code in (200, 404), response.content
    assert (
        response.status_code == 200 or "{key}" in template or "_x" in response.request["PATH_INFO"]
    )
