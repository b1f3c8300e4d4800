"""The activity log as the API shows it: a company's rows newest first, filtered and paged, and
an issue's rows (the issue's own and its comments')."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from companies.models import ActivityEvent
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def event(company, minutes_ago: float, **fields) -> ActivityEvent:
    """One log row, written directly so its time is exact."""
    fields.setdefault("actor_type", "system")
    fields.setdefault("actor_id", "system")
    fields.setdefault("action", "test.happened")
    fields.setdefault("entity_type", "company")
    fields.setdefault("entity_id", company.pk)
    return ActivityEvent.objects.create(
        company=company, created_at=timezone.now() - timedelta(minutes=minutes_ago), **fields
    )


def activity_url(company) -> str:
    return f"/api/companies/{company.pk}/activity"


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()]


def actions(response) -> list[str]:
    return [row["action"] for row in response.json()]


# -- company activity ------------------------------------------------------------------------


def test_company_activity_is_newest_first(board, company):
    old = event(company, 30, action="a.old")
    new = event(company, 1, action="a.new")
    middle = event(company, 10, action="a.middle")

    response = board.get(activity_url(company))

    assert response.status_code == 200
    assert ids(response) == wire([new, middle, old])


def test_company_activity_row_has_the_full_shape(board, company, agent):
    row = event(
        company,
        1,
        actor_type="agent",
        actor_id=agent.pk,
        run_id="run_01j00000000000000000000000",
        action="issue.updated",
        entity_type="issue",
        entity_id="iss_01j00000000000000000000000",
        issue_id="iss_01j00000000000000000000000",
        details={"changes": {"title": {"from": "a", "to": "b"}}},
    )

    response = board.get(activity_url(company))

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": wire(row),
            "companyId": wire(company),
            "actorType": "agent",
            "actorId": wire(agent),
            "runId": wire("run_01j00000000000000000000000"),
            "action": "issue.updated",
            "entityType": "issue",
            "entityId": wire("iss_01j00000000000000000000000"),
            "issueId": wire("iss_01j00000000000000000000000"),
            "details": {"changes": {"title": {"from": "a", "to": "b"}}},
            "createdAt": row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    ]


def test_company_activity_shows_what_the_api_did(board, board_user, company):
    created = board.post(
        f"/api/companies/{company.pk}/issues", {"title": "Logged"}, format="json"
    ).json()
    board.patch(f"/api/issues/{created['id']}", {"title": "Logged twice"}, format="json")

    response = board.get(activity_url(company))

    assert response.status_code == 200
    assert actions(response) == ["issue.updated", "issue.created"]
    for row in response.json():
        assert (row["actorType"], row["actorId"]) == ("user", wire(board_user))
        assert (row["entityType"], row["entityId"], row["issueId"]) == (
            "issue",
            created["id"],
            created["id"],
        )


def test_company_activity_leaves_out_other_companies(board, company, other_company):
    ours = event(company, 1)
    event(other_company, 1)

    response = board.get(activity_url(company))

    assert response.status_code == 200
    assert ids(response) == [wire(ours)]


def test_agent_of_the_company_reads_its_activity(agent_client, company):
    row = event(company, 1)

    response = agent_client.get(activity_url(company))

    assert response.status_code == 200
    assert ids(response) == [wire(row)]


def test_company_activity_of_another_company_is_404(other_client, company):
    event(company, 1)

    response = other_client.get(activity_url(company))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_company_activity_of_an_unknown_company_is_404(board, company):
    response = board.get("/api/companies/cmp_00000000000000000000000000/activity")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_company_activity_filters_by_agent(board, company, agent, board_user):
    colleague = factories.AgentFactory(company=company)
    by_agent = event(company, 2, actor_type="agent", actor_id=agent.pk)
    event(company, 1, actor_type="agent", actor_id=colleague.pk)
    event(company, 1, actor_type="user", actor_id=board_user.pk)

    response = board.get(activity_url(company), {"agentId": agent.pk})

    assert response.status_code == 200
    assert ids(response) == [wire(by_agent)]


def test_company_activity_filters_by_entity_type(board, company):
    on_issue = event(company, 2, entity_type="issue", entity_id="iss_01j00000000000000000000001")
    event(company, 1, entity_type="comment", entity_id="cmt_01j00000000000000000000001")

    response = board.get(activity_url(company), {"entityType": "issue"})

    assert response.status_code == 200
    assert ids(response) == [wire(on_issue)]


def test_company_activity_filters_by_entity_type_and_id(board, company):
    wanted = event(company, 3, entity_type="issue", entity_id="iss_01j00000000000000000000001")
    event(company, 2, entity_type="issue", entity_id="iss_01j00000000000000000000002")
    event(company, 1, entity_type="comment", entity_id="cmt_01j00000000000000000000001")

    response = board.get(
        activity_url(company),
        {"entityType": "issue", "entityId": "iss_01j00000000000000000000001"},
    )

    assert response.status_code == 200
    assert ids(response) == [wire(wanted)]


def test_company_activity_limit_answers_a_page_and_a_next_cursor(board, company):
    rows = [event(company, minutes) for minutes in (1, 2, 3)]

    response = board.get(activity_url(company), {"limit": 2})

    assert response.status_code == 200
    assert ids(response) == wire([rows[0], rows[1]])
    assert response.headers["X-Next-Cursor"]


def test_following_company_activity_cursors_walks_every_row_exactly_once(board, company):
    # Pairs of rows share a timestamp, so the cursor must break ties by id.
    now = timezone.now()
    rows = [
        ActivityEvent.objects.create(
            company=company,
            actor_type="system",
            actor_id="system",
            action=f"tick.{i}",
            entity_type="company",
            entity_id=company.pk,
            created_at=now - timedelta(minutes=i // 2),
        )
        for i in range(7)
    ]
    everything = ids(board.get(activity_url(company)))
    seen, cursor = [], None

    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = board.get(activity_url(company), params)
        assert response.status_code == 200
        seen += ids(response)
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break

    assert seen == everything
    assert sorted(seen) == sorted(wire(rows))


@pytest.mark.parametrize(("param", "value"), [("limit", "0"), ("limit", "1001"), ("cursor", "@@")])
def test_company_activity_bad_paging_is_400(board, company, param, value):
    event(company, 1)

    response = board.get(activity_url(company), {param: value})

    assert response.status_code == 400
    assert param in response.json()["details"]


# -- issue activity --------------------------------------------------------------------------


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo", title="Tracked")


def issue_activity_url(issue) -> str:
    return f"/api/issues/{issue.pk}/activity"


def test_issue_activity_lists_rows_about_the_issue_and_its_comments_newest_first(
    board, company, issue
):
    url = f"/api/issues/{issue.pk}"
    assert board.patch(url, {"title": "Tracked closely"}, format="json").status_code == 200
    comment = board.post(f"{url}/comments", {"body": "Noted"}, format="json").json()
    assert board.patch(url, {"status": "blocked"}, format="json").status_code == 200
    elsewhere = factories.IssueFactory(company=company)
    board.patch(f"/api/issues/{elsewhere.pk}", {"title": "Not this one"}, format="json")

    response = board.get(issue_activity_url(issue))

    assert response.status_code == 200
    assert actions(response) == ["issue.updated", "issue.comment_added", "issue.updated"]
    rows = response.json()
    assert {row["issueId"] for row in rows} == {wire(issue)}
    assert (rows[1]["entityType"], rows[1]["entityId"]) == ("comment", comment["id"])
    assert rows[0]["details"]["changes"]["status"] == {"from": "todo", "to": "blocked"}
    assert rows[2]["details"]["changes"]["title"] == {"from": "Tracked", "to": "Tracked closely"}


def test_issue_activity_by_identifier(board, issue):
    row = event(issue.company, 1, entity_type="issue", entity_id=issue.pk, issue_id=issue.pk)

    response = board.get(f"/api/issues/{issue.identifier.lower()}/activity")

    assert response.status_code == 200
    assert ids(response) == [wire(row)]


def test_issue_activity_is_paginated(board, issue):
    rows = [
        event(issue.company, minutes, entity_type="issue", entity_id=issue.pk, issue_id=issue.pk)
        for minutes in (1, 2, 3)
    ]

    first = board.get(issue_activity_url(issue), {"limit": 2})
    second = board.get(
        issue_activity_url(issue), {"limit": 2, "cursor": first.headers["X-Next-Cursor"]}
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert ids(first) == wire([rows[0], rows[1]])
    assert ids(second) == [wire(rows[2])]
    assert "X-Next-Cursor" not in second.headers


def test_agent_of_the_company_reads_issue_activity(agent_client, issue):
    row = event(issue.company, 1, entity_type="issue", entity_id=issue.pk, issue_id=issue.pk)

    response = agent_client.get(issue_activity_url(issue))

    assert response.status_code == 200
    assert ids(response) == [wire(row)]


def test_issue_activity_of_another_company_is_404(other_client, issue):
    event(issue.company, 1, entity_type="issue", entity_id=issue.pk, issue_id=issue.pk)

    response = other_client.get(issue_activity_url(issue))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_issue_activity_of_an_unknown_issue_is_404(board, company):
    response = board.get("/api/issues/iss_00000000000000000000000000/activity")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
