"""One id, two forms (DESIGN §5). `/api` writes every id as a UUID, Paperclip's form; every
endpoint reads either form (`prefix_<ulid>` or the UUID of the same 128 bits) and both find the
same object, in paths, bodies, query filters and the run header.

The route table is read from the URL resolver, so a new endpoint is covered without editing it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from agents.models import HeartbeatRun
from issues.models import Issue
from paperclip.ids import as_uuid, parse_id
from tests import factories
from tests.conftest import client_for
from tests.routes import routes
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

# A stored id anywhere in a body or header: what `/api` must never write.
STORED_ID = re.compile(r"\b[a-z]{2,3}_[0-9a-hjkmnp-tv-z]{26}\b")


@pytest.fixture
def key(agent):
    return factories.AgentApiKeyFactory(agent=agent).token


def test_the_two_forms_are_one_id():
    prefixed = "iss_01m8rd9461psyv1mhrdaj30j6k"
    written = as_uuid(prefixed)

    assert written == "01a230d4-90c1-b67d-b0d2-386aa43048d3"
    assert parse_id(written, "iss") == parse_id(written.upper(), "iss") == prefixed
    assert parse_id(prefixed, "iss") == prefixed
    assert parse_id(prefixed, "agt") is None  # another kind of object
    assert parse_id("iss_nope", "iss") is None


# -- a company with one of everything, made through the API ---------------------------------------


@pytest.fixture
def world(settings, tmp_path, board, company, agent, key):
    """Every kind of object `/api` serves, in `company`, with the stored ids of each."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    goal = board.post(f"/api/companies/{company.pk}/goals", {"title": "Ship"}, format="json")
    project = board.post(
        f"/api/companies/{company.pk}/projects",
        {"name": "Rocket", "goalId": stored(goal.json()["id"], factories.GoalFactory._meta.model)},
        format="json",
    )
    label = board.post(f"/api/companies/{company.pk}/labels", {"name": "bug"}, format="json")
    team = board.post(f"/api/companies/{company.pk}/teams", {"name": "Core"}, format="json")
    webhook = board.post(
        f"/api/companies/{company.pk}/webhooks",
        {"url": "https://hooks.example.com/paperclip", "events": ["*"]},
        format="json",
    )
    ping = board.post(f"/api/webhooks/{webhook.json()['id']}/test")
    parent = factories.IssueFactory(company=company, status="todo")
    created = board.post(
        f"/api/companies/{company.pk}/issues",
        {
            "title": "Build it",
            "status": "todo",
            "assigneeAgentId": agent.pk,
            "parentId": parent.pk,
            "projectId": project.json()["id"],
            "goalId": goal.json()["id"],
            "labelIds": [label.json()["id"]],
            "blockedByIssueIds": [],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    issue = Issue.objects.get(pk=stored(created.json()["id"], Issue))
    comment = board.post(f"/api/issues/{issue.pk}/comments", {"body": "Go"}, format="json")
    board.put(f"/api/issues/{issue.pk}/documents/plan", {"body": "v1"}, format="json")
    attachment = board.post(
        f"/api/companies/{company.pk}/issues/{issue.pk}/attachments",
        {"file": SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")},
        format="multipart",
    )
    approval = board.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "budget_override_required", "issueIds": [issue.pk]},
        format="json",
    )
    woken = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json")
    for response in (
        goal,
        project,
        label,
        team,
        webhook,
        ping,
        comment,
        attachment,
        approval,
        woken,
    ):
        assert response.status_code in (201, 202), response.json()
    # The run has output to read (`.../log`), as a process run's does while it works.
    run_id = parse_id(woken.json()["id"], "run")
    HeartbeatRun.objects.filter(pk=run_id).update(log_tail="working\n")
    return {
        "company": company.pk,
        "agent": agent.pk,
        "issue": issue.pk,
        "comment": parse_id(comment.json()["id"], "cmt"),
        "goal": parse_id(goal.json()["id"], "gol"),
        "project": parse_id(project.json()["id"], "prj"),
        "label": parse_id(label.json()["id"], "lbl"),
        "team": parse_id(team.json()["id"], "tm"),
        "webhook": parse_id(webhook.json()["id"], "whk"),
        "delivery": parse_id(ping.json()["id"], "whd"),
        "attachment": parse_id(attachment.json()["id"], "att"),
        "approval": parse_id(approval.json()["id"], "apr"),
        "run": run_id,
        "key": "plan",
    }


# -- the route table, from the resolver -----------------------------------------------------------

ROUTES = routes("api")
READS = [route for route in ROUTES if route[0] == "get"]
WRITES = [route for route in ROUTES if route[0] != "get"]


def body(response) -> bytes:
    """The body, a streamed file (attachment content) read to the end."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def in_form(world: dict, form: str) -> dict:
    return {
        name: (as_uuid(value) if form == "uuid" and name != "key" else value)
        for name, value in world.items()
    }


def test_the_route_table_has_every_kind_of_object():
    placeholders = set(re.findall(r"\{(\w+)\}", " ".join(path for _, path in ROUTES)))

    assert placeholders == {
        "company", "agent", "run", "issue", "comment", "key", "attachment", "approval", "goal",
        "project", "label", "team", "webhook", "delivery",
    }  # fmt: skip
    assert len(READS) >= 20 and len(WRITES) >= 30


@pytest.mark.parametrize(("method", "template"), READS, ids=[p for _, p in READS])
def test_every_read_finds_the_same_object_by_either_form(board, world, method, template):
    by_prefix = board.get(template.format(**in_form(world, "prefixed")))
    by_uuid = board.get(template.format(**in_form(world, "uuid")))

    assert by_prefix.status_code == by_uuid.status_code == 200, body(by_uuid)
    assert body(by_uuid) == body(by_prefix)


@pytest.mark.parametrize(("method", "template"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_every_write_finds_its_object_by_either_form(board, world, method, template):
    """Each form on the same world (the first write rolled back): the same answer, never 404
    (the object was found), and neither writes a stored id back."""
    answers = {}
    for form in ("prefixed", "uuid"):
        with transaction.atomic():
            response = getattr(board, method)(template.format(**in_form(world, form)), {})
            transaction.set_rollback(True)
        assert not STORED_ID.search(response.content.decode()), response.content
        answers[form] = response.status_code

    assert answers["uuid"] == answers["prefixed"] != 404, answers


# -- /api writes only UUIDs -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template"), READS, ids=[p for _, p in READS])
def test_every_read_writes_ids_only_as_uuids(board, agent_client, world, method, template):
    url = template.format(**world)

    for client in (board, agent_client):
        response = client.get(url, {"limit": 1})
        text = body(response).decode()
        assert not STORED_ID.search(text), text
        cursor = response.headers.get("X-Next-Cursor")
        if cursor:
            decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            assert not STORED_ID.search(decoded), decoded


def test_an_issue_names_everything_it_links_by_uuid(board, world):
    body = board.get(f"/api/issues/{world['issue']}").json()

    assert body["id"] == wire(world["issue"])
    assert body["companyId"] == wire(world["company"])
    assert body["assigneeAgentId"] == wire(world["agent"])
    assert (body["projectId"], body["goalId"]) == (wire(world["project"]), wire(world["goal"]))
    assert body["labelIds"] == [wire(world["label"])]
    for value in (body["id"], body["parentId"], body["labelIds"][0]):
        assert str(uuid.UUID(value)) == value  # lowercase 8-4-4-4-12


def test_activity_details_name_their_objects_by_uuid(board, company, agent, world):
    other = factories.AgentFactory(company=company, name="Other")
    board.patch(f"/api/issues/{world['issue']}", {"assigneeAgentId": other.pk}, format="json")

    rows = board.get(f"/api/issues/{world['issue']}/activity").json()

    change = next(row for row in rows if row["action"] == "issue.updated")
    assert change["entityId"] == wire(world["issue"])
    assert change["details"]["changes"]["assigneeAgentId"] == {
        "from": wire(agent),
        "to": wire(other),
    }


def test_a_title_that_looks_like_an_id_is_written_back_as_given(board, company):
    looks_like_one = "iss_01m8rd9461psyv1mhrdaj30j6k"

    created = board.post(
        f"/api/companies/{company.pk}/issues", {"title": looks_like_one}, format="json"
    )

    assert created.json()["title"] == looks_like_one


def test_the_next_page_cursor_carries_uuids_and_pages_on(board, company):
    issues = [factories.IssueFactory(company=company, status="todo") for _ in range(3)]

    first = board.get(f"/api/companies/{company.pk}/issues", {"limit": 2})
    cursor = first.headers["X-Next-Cursor"]
    second = board.get(f"/api/companies/{company.pk}/issues", {"limit": 2, "cursor": cursor})

    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert wire(next(i for i in issues if i.pk == stored(first.json()[-1]["id"], Issue))) in decoded
    seen = [row["id"] for row in first.json() + second.json()]
    assert sorted(seen) == sorted(wire(issues))


def test_a_mention_link_by_uuid_wakes_the_agent(board, company, agent):
    issue = factories.IssueFactory(company=company)

    board.post(
        f"/api/issues/{issue.pk}/comments",
        {"body": f"[@Builder](agent://{as_uuid(agent.pk)}) please look"},
        format="json",
    )

    run = HeartbeatRun.objects.get(agent=agent)
    assert run.wake_reason == "issue_comment_mentioned"


# -- ids Paperclip's CLI sends --------------------------------------------------------------------


def test_a_uuid_of_another_companys_issue_is_404_like_a_missing_one(other_client, company):
    issue = factories.IssueFactory(company=company)

    response = other_client.get(f"/api/issues/{as_uuid(issue.pk)}")

    assert response.status_code == 404


def test_create_with_a_uuid_assignee_assigns_that_agent(board, company, agent):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Via the CLI", "assigneeAgentId": as_uuid(agent.pk)},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert Issue.objects.get(pk=stored(response.json()["id"], Issue)).assignee_agent_id == agent.pk


def test_an_agent_checks_out_naming_itself_and_its_run_by_uuid(key, agent, company):
    issue = factories.IssueFactory(company=company, status="todo")
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(key, run_id=as_uuid(run.pk))

    response = client.post(
        f"/api/issues/{as_uuid(issue.pk)}/checkout",
        {"agentId": as_uuid(agent.pk), "expectedStatuses": ["todo"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["checkoutRunId"] == as_uuid(run.pk)
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("in_progress", run.pk)


def test_a_document_is_updated_with_its_base_revision_as_read(board, company):
    issue = factories.IssueFactory(company=company)
    url = f"/api/issues/{issue.pk}/documents/plan"
    created = board.put(url, {"body": "v1"}, format="json").json()

    response = board.put(
        url, {"body": "v2", "baseRevisionId": created["latestRevisionId"]}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["body"] == "v2"


def test_list_filters_take_uuids(board, company, agent):
    mine = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    factories.IssueFactory(company=company, status="todo")

    response = board.get(
        f"/api/companies/{company.pk}/issues", {"assigneeAgentId": as_uuid(agent.pk)}
    )
    malformed = board.get(f"/api/companies/{company.pk}/issues", {"assigneeAgentId": "nope"})

    assert [row["id"] for row in response.json()] == [wire(mine)]
    assert malformed.json() == []  # names no agent: not "unassigned"


def test_comments_page_after_a_comment_named_as_read(board, company):
    issue = factories.IssueFactory(company=company)
    first, second = (
        board.post(f"/api/issues/{issue.pk}/comments", {"body": b}, format="json").json()
        for b in ("one", "two")
    )

    response = board.get(f"/api/issues/{issue.pk}/comments", {"after": first["id"], "order": "asc"})

    assert [row["id"] for row in response.json()] == [second["id"]]


@pytest.mark.parametrize("form", [lambda pk: pk, as_uuid], ids=["prefixed", "uuid"])
def test_activity_filters_take_either_form(board, agent_client, company, agent, form):
    issue = factories.IssueFactory(company=company, status="todo")
    other = factories.IssueFactory(company=company, status="todo")
    board.patch(f"/api/issues/{issue.pk}", {"priority": "high"}, format="json")
    board.patch(f"/api/issues/{other.pk}", {"priority": "high"}, format="json")
    agent_client.post(f"/api/issues/{other.pk}/comments", {"body": "Mine"}, format="json")
    url = f"/api/companies/{company.pk}/activity"

    by_entity = board.get(url, {"entityType": "issue", "entityId": form(issue.pk)})
    by_agent = board.get(url, {"agentId": form(agent.pk)})

    assert [(row["action"], row["entityId"]) for row in by_entity.json()] == [
        ("issue.updated", wire(issue))
    ]
    assert [(row["action"], row["actorId"]) for row in by_agent.json()] == [
        ("issue.comment_added", wire(agent))
    ]
