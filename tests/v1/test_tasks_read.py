"""`/v1` tasks, read (reference 003, DESIGN §2 and §8): the task object, the status projection,
the list's filters and its cursor pages, and ids written as 003 writes them (prefixed)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import HeartbeatRun
from issues.models import Status
from paperclip.ids import as_uuid
from tests import factories
from tests.conftest import iso

pytestmark = pytest.mark.django_db

UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def tasks_url(company) -> str:
    return f"/v1/companies/{company.pk}/issues"


def listed(client, company, **params) -> list[str]:
    response = client.get(tasks_url(company), params)
    assert response.status_code == 200, response.json()
    return [task["id"] for task in response.json()["data"]]


def test_the_task_object_is_003s_with_identifier_priority_and_status_reason(board, company, agent):
    team = factories.TeamFactory(company=company)
    parent = factories.IssueFactory(company=company)
    blocker = factories.IssueFactory(company=company)
    run = factories.HeartbeatRunFactory(
        agent=agent,
        status=HeartbeatRun.Status.RUNNING,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    issue = factories.IssueFactory(
        company=company,
        title="Rewrite the hero section",
        description="Short, punchy.",
        status=Status.IN_PROGRESS,
        assignee_agent=agent,
        team=team,
        parent=parent,
        budget_usd=Decimal("1.50"),
        due_at=timezone.now() + timedelta(days=1),
        checkout_run=run,
    )
    issue.labels.set(
        [factories.LabelFactory(company=company, name=n) for n in ("marketing", "urgent")]
    )
    issue.dependencies.set([blocker])

    response = board.get(f"{tasks_url(company)}/{issue.pk}")

    assert response.status_code == 200
    assert response.headers["ETag"] == issue.etag
    assert response.json()["data"] == {
        "id": issue.pk,
        "identifier": issue.identifier,
        "companyId": company.pk,
        "title": "Rewrite the hero section",
        "description": "Short, punchy.",
        "status": "running",
        "statusReason": None,
        "priority": "medium",
        "parentId": parent.pk,
        "assignedAgentId": agent.pk,
        "assignedTeamId": team.pk,
        "budget": {"perTaskUsd": 1.5, "spent": {"usd": 0.0}},
        "dueAt": iso(issue.due_at),
        "labels": ["marketing", "urgent"],
        "dependencies": [blocker.pk],
        "currentRunId": run.pk,
        "createdAt": iso(issue.created_at),
        "updatedAt": iso(issue.updated_at),
    }


@pytest.mark.parametrize(
    ("status", "assigned", "state"),
    [
        (Status.BACKLOG, False, "queued"),
        (Status.BACKLOG, True, "queued"),
        (Status.TODO, False, "queued"),
        (Status.TODO, True, "assigned"),
        (Status.IN_PROGRESS, True, "running"),
        (Status.IN_REVIEW, True, "review"),
        (Status.BLOCKED, True, "handoff"),
        (Status.DONE, True, "done"),
        (Status.FAILED, True, "failed"),
        (Status.CANCELLED, False, "cancelled"),
    ],
)
def test_each_canonical_status_projects_to_one_task_state_both_ways(
    board, company, agent, status, assigned, state
):
    issue = factories.IssueFactory(
        company=company, status=status, assignee_agent=agent if assigned else None
    )
    factories.IssueFactory(company=company, status=Status.TODO)  # queued: a decoy for others

    read = board.get(f"{tasks_url(company)}/{issue.pk}").json()["data"]

    assert read["status"] == state
    assert issue.pk in listed(board, company, status=state)
    others = [s for s in ("assigned", "running", "review", "handoff", "done") if s != state]
    assert issue.pk not in listed(board, company, status=",".join(others))


def test_a_change_through_api_shows_on_v1(board, company, agent):
    issue = factories.IssueFactory(company=company, status=Status.BACKLOG)

    board.patch(f"/api/issues/{issue.pk}", {"assigneeAgentId": agent.pk}, format="json")
    board.patch(f"/api/issues/{issue.pk}", {"status": "todo"}, format="json")

    task = board.get(f"{tasks_url(company)}/{issue.identifier}").json()["data"]
    assert (task["status"], task["assignedAgentId"]) == ("assigned", agent.pk)


def test_an_unknown_status_is_400_naming_it(board, company):
    response = board.get(tasks_url(company), {"status": "running,sleeping"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "sleeping" in error["details"]["status"][0]


def test_the_list_filters_by_agent_team_parent_label_and_time(board, company, agent):
    team = factories.TeamFactory(company=company)
    parent = factories.IssueFactory(company=company)
    mine = factories.IssueFactory(company=company, assignee_agent=agent, status=Status.TODO)
    teams = factories.IssueFactory(company=company, team=team)
    child = factories.IssueFactory(company=company, parent=parent)
    labelled = factories.IssueFactory(company=company)
    labelled.labels.set([factories.LabelFactory(company=company, name="marketing")])
    old = factories.IssueFactory(company=company, created_at=timezone.now() - timedelta(days=9))
    top = {mine.pk, teams.pk, labelled.pk, old.pk, parent.pk}
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()

    assert listed(board, company, agent=agent.pk) == [mine.pk]
    assert listed(board, company, agent=as_uuid(agent.pk)) == [mine.pk]
    assert listed(board, company, team=team.pk) == [teams.pk]
    assert listed(board, company, parent=parent.identifier) == [child.pk]
    assert set(listed(board, company, parent="null")) == top
    assert listed(board, company, label="marketing") == [labelled.pk]
    assert listed(board, company, label="market") == []  # exact
    assert listed(board, company, until=week_ago) == [old.pk]
    assert old.pk not in listed(board, company, since=week_ago)


def test_the_list_is_newest_first_in_cursor_pages_that_survive_inserts(board, company):
    base = timezone.now() - timedelta(hours=1)
    tasks = [
        factories.IssueFactory(company=company, created_at=base + timedelta(minutes=i))
        for i in range(5)
    ]
    newest_first = [t.pk for t in reversed(tasks)]

    first = board.get(tasks_url(company), {"limit": 2}).json()
    factories.IssueFactory(company=company)  # inserted meanwhile, newer than all: page one's
    between = factories.IssueFactory(company=company, created_at=base + timedelta(minutes=2.5))
    second = board.get(tasks_url(company), {"limit": 2, "cursor": first["meta"]["nextCursor"]})
    second = second.json()

    assert [t["id"] for t in first["data"]] == newest_first[:2]
    assert first["meta"]["hasMore"] is True
    # Nothing from page one repeats; the task inserted at an earlier time shows where it
    # belongs; the newest one belongs before the cursor, so this walk does not see it.
    assert [t["id"] for t in second["data"]] == [between.pk, newest_first[2]]


def test_a_walk_over_every_page_sees_every_task_once(board, company):
    tasks = {factories.IssueFactory(company=company).pk for _ in range(7)}
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = board.get(tasks_url(company), params).json()
        seen += [t["id"] for t in body["data"]]
        cursor = body["meta"]["nextCursor"]
        if not body["meta"]["hasMore"]:
            assert cursor is None
            break

    assert sorted(seen) == sorted(tasks)


def test_the_limit_is_bounded(board, company):
    response = board.get(tasks_url(company), {"limit": 201})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_either_id_form_finds_the_task_and_v1_writes_only_prefixed_ids(board, company, agent):
    issue = factories.IssueFactory(company=company, assignee_agent=agent, status=Status.TODO)
    issue.dependencies.set([factories.IssueFactory(company=company)])

    by_prefix = board.get(f"{tasks_url(company)}/{issue.pk}")
    by_uuid = board.get(f"/v1/companies/{as_uuid(company.pk)}/issues/{as_uuid(issue.pk)}")
    page = board.get(tasks_url(company), {"limit": 1})

    assert by_prefix.json()["data"] == by_uuid.json()["data"]
    for response in (by_prefix, by_uuid, page, board.get("/v1/whoami")):
        assert not UUID_IN_TEXT.search(response.content.decode()), response.content
    assert by_uuid.json()["data"]["assignedAgentId"] == agent.pk


@pytest.mark.parametrize("param", ["agent", "team"])
def test_an_id_that_names_no_agent_or_team_matches_no_task(board, company, agent, param):
    factories.IssueFactory(company=company)  # unassigned, team-less
    factories.IssueFactory(company=company, assignee_agent=agent, status=Status.TODO)
    team = factories.TeamFactory(company=company)
    wrong_kind = {"agent": team.pk, "team": agent.pk}[param]

    for value in ("garbage", wrong_kind, "agt_nope", "00000000-0000-0000-0000-000000000000"):
        assert listed(board, company, **{param: value}) == [], value


def test_a_task_shows_what_its_runs_cost(board, company, agent):
    issue = factories.IssueFactory(
        company=company, status=Status.TODO, assignee_agent=agent, budget_usd=Decimal("2")
    )
    for token, usage in enumerate(({"costUsd": 1.5}, {"costCents": 20}), start=1):
        factories.HeartbeatRunFactory(
            agent=agent, issue_id=issue.pk, fencing_token=token, usage=usage
        )

    shown = board.get(f"{tasks_url(company)}/{issue.pk}").json()["data"]
    [listed_task] = board.get(tasks_url(company)).json()["data"]

    assert shown["budget"] == {"perTaskUsd": 2.0, "spent": {"usd": 1.7}}
    assert listed_task["budget"] == shown["budget"]


def test_the_list_is_a_fixed_number_of_queries(board, company, agent, django_assert_num_queries):
    for _ in range(11):
        issue = factories.IssueFactory(company=company, assignee_agent=agent, status=Status.TODO)
        issue.labels.set([factories.LabelFactory(company=company)])
        issue.dependencies.set([factories.IssueFactory(company=company)])
        factories.CostEventFactory(agent=agent, issue=issue, cost_cents=100)

    # SAVEPOINT (the request's transaction), the board token, the caller's memberships, the
    # company, one page of tasks (each with its run holding it, its labels, its dependencies
    # and what its runs cost, in the same statement), RELEASE SAVEPOINT: the same for 1 task
    # or 22.
    with django_assert_num_queries(6):
        response = board.get(tasks_url(company))

    assert len(response.json()["data"]) == 22
    assert {task["budget"]["spent"]["usd"] for task in response.json()["data"]} == {0.0, 1.0}
