"""Approvals over HTTP: agents (or the board) ask, the board decides once, the requester is
woken with the decision, and another company sees none of it (DESIGN §6)."""

from __future__ import annotations

import pytest

from agents.models import HeartbeatRun, WakeupRequest
from companies.models import ActivityEvent
from issues.models import Approval, ApprovalComment
from tests import factories
from tests.conftest import client_for, iso
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
BOARD_ONLY = {"error": "Board access required", "code": "forbidden"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def approval(company, agent, issue):
    """A pending hire request by `agent`, linked to `issue`."""
    approval = Approval.objects.create(
        company=company, type="hire_agent", payload={"name": "Designer"}, requested_by_agent=agent
    )
    approval.issues.add(issue)
    return approval


def approval_body(approval: Approval) -> dict:
    """The approval as the API must render it, from the database."""
    approval = Approval.objects.get(pk=approval.pk)
    return {
        "id": wire(approval.pk),
        "companyId": wire(approval.company_id),
        "type": approval.type,
        "status": approval.status,
        "payload": {
            key: wire(value) if key.endswith("Id") else value
            for key, value in approval.payload.items()
        },
        "issueIds": sorted(wire(list(approval.issues.values_list("pk", flat=True)))),
        "requestedByAgentId": wire(approval.requested_by_agent_id),
        "requestedByUserId": wire(approval.requested_by_user_id),
        "decidedByUserId": wire(approval.decided_by_user_id),
        "decisionNote": approval.decision_note,
        "decidedAt": iso(approval.decided_at) if approval.decided_at else None,
        "createdAt": iso(approval.created_at),
        "updatedAt": iso(approval.updated_at),
    }


def sorted_ids(body: dict) -> dict:
    return body | {"issueIds": sorted(body["issueIds"])}


def decide(client, approval: Approval, verb: str, **data):
    return client.post(f"/api/approvals/{approval.pk}/{verb}", data, format="json")


# -- create ----------------------------------------------------------------------------------


def test_agent_request_is_201_pending_naming_the_agent_and_linking_issues_by_id_or_identifier(
    agent_client, agent, company, issue
):
    second = factories.IssueFactory(company=company)

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {
            "type": "hire_agent",
            "payload": {"name": "Designer", "budgetCents": 5000},
            "issueIds": [issue.pk, second.identifier.lower()],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    approval = Approval.objects.get()
    assert body["id"] == wire(approval) and approval.pk.startswith("apr_")
    assert sorted_ids(body) == approval_body(approval)
    assert (body["status"], body["type"]) == ("pending", "hire_agent")
    assert body["companyId"] == wire(company)
    assert body["payload"] == {"name": "Designer", "budgetCents": 5000}
    assert sorted(body["issueIds"]) == sorted(wire([issue, second]))
    assert (body["requestedByAgentId"], body["requestedByUserId"]) == (wire(agent), None)
    assert (body["decidedAt"], body["decidedByUserId"]) == (None, None)
    assert set(approval.issues.all()) == {issue, second}
    row = ActivityEvent.objects.get()
    assert (row.action, row.entity_type, row.entity_id, row.actor_type, row.actor_id) == (
        "approval.created",
        "approval",
        approval.pk,
        "agent",
        agent.pk,
    )
    assert row.details["type"] == "hire_agent"
    assert sorted(row.details["issueIds"]) == sorted([issue.pk, second.pk])


def test_board_request_is_201_pending_naming_the_user(board, board_user, company):
    response = board.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "budget_override_required"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    approval = Approval.objects.get(pk=stored(body["id"], Approval))
    assert body == approval_body(approval)
    assert (body["status"], body["payload"], body["issueIds"]) == ("pending", {}, [])
    assert (body["requestedByUserId"], body["requestedByAgentId"]) == (wire(board_user), None)
    assert ActivityEvent.objects.get().action == "approval.created"


def test_request_linking_another_companys_issue_is_400_and_creates_nothing(
    agent_client, company, issue, other_company
):
    theirs = factories.IssueFactory(company=other_company)

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "issueIds": [issue.pk, theirs.pk]},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"issueIds"}
    assert not Approval.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_request_with_an_unknown_type_is_400_and_creates_nothing(agent_client, company):
    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals", {"type": "buy_a_yacht"}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"type"}
    assert not Approval.objects.exists()
    assert not ActivityEvent.objects.exists()


# -- read ------------------------------------------------------------------------------------


def test_list_filters_by_status(board, company, agent, approval):
    approved = Approval.objects.create(
        company=company, type="approve_ceo_strategy", status="approved", requested_by_agent=agent
    )

    pending = board.get(f"/api/companies/{company.pk}/approvals", {"status": "pending"})
    done = board.get(f"/api/companies/{company.pk}/approvals", {"status": "approved"})
    everything = board.get(f"/api/companies/{company.pk}/approvals")

    assert (pending.status_code, done.status_code, everything.status_code) == (200, 200, 200)
    assert pending.json() == [approval_body(approval)]
    assert done.json() == [approval_body(approved)]
    assert {row["id"] for row in everything.json()} == {wire(approval), wire(approved)}


def test_list_with_an_unknown_status_is_400(board, company, approval):
    response = board.get(f"/api/companies/{company.pk}/approvals", {"status": "maybe"})

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"status"}


def test_list_query_count_does_not_grow_with_rows(
    board, company, agent, issue, django_assert_num_queries
):
    for _ in range(3):
        row = Approval.objects.create(company=company, type="hire_agent", requested_by_agent=agent)
        row.issues.add(issue, factories.IssueFactory(company=company))

    # The request's savepoint and its release (one transaction per request), the board token,
    # the user's memberships, the company, the approvals page, and their linked issues (one
    # prefetch for every row). The token's last-used touch runs after commit, never here.
    with django_assert_num_queries(7):
        response = board.get(f"/api/companies/{company.pk}/approvals")

    assert response.status_code == 200
    assert len(response.json()) == 3
    assert all(len(row["issueIds"]) == 2 for row in response.json())


def test_get_one_answers_the_approval(agent_client, approval):
    response = agent_client.get(f"/api/approvals/{approval.pk}")

    assert response.status_code == 200
    assert sorted_ids(response.json()) == approval_body(approval)


def test_get_its_issues_answers_the_linked_issues(agent_client, company, approval, issue):
    factories.IssueFactory(company=company)  # not linked

    response = agent_client.get(f"/api/approvals/{approval.pk}/issues")

    assert response.status_code == 200
    assert [(row["id"], row["identifier"], row["status"]) for row in response.json()] == [
        (wire(issue), issue.identifier, "todo")
    ]


def test_unknown_approval_id_is_404(board):
    response = board.get("/api/approvals/apr_doesnotexist")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- decisions -------------------------------------------------------------------------------


def test_board_approves_a_pending_approval(board, board_user, approval):
    response = decide(board, approval, "approve", note="Go ahead")

    assert response.status_code == 200, response.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by_user_id, approval.decision_note) == (
        "approved",
        board_user.pk,
        "Go ahead",
    )
    assert approval.decided_at is not None
    body = response.json()
    assert sorted_ids(body) == approval_body(approval)
    assert (body["status"], body["decidedByUserId"]) == ("approved", wire(board_user))
    assert body["decidedAt"] == iso(approval.decided_at)
    row = ActivityEvent.objects.get(action="approval.approved")
    assert (row.entity_type, row.entity_id, row.actor_type, row.actor_id) == (
        "approval",
        approval.pk,
        "user",
        board_user.pk,
    )
    assert row.details["status"] == {"from": "pending", "to": "approved"}


def test_approving_wakes_the_requesting_agent_with_the_approval_and_its_issues(
    board, agent, approval, issue, company
):
    second = factories.IssueFactory(company=company)
    approval.issues.add(second)

    response = decide(board, approval, "approve")

    assert response.status_code == 200, response.json()
    wakeup = WakeupRequest.objects.get(agent=agent)
    run = HeartbeatRun.objects.get(agent=agent)
    assert wakeup.run_id == run.pk
    assert (wakeup.requested_by_type, run.status) == ("user", "queued")
    assert run.context["approvalId"] == approval.pk
    assert run.context["approvalStatus"] == "approved"
    assert sorted(run.context["linkedIssueIds"]) == sorted([issue.pk, second.pk])


def test_approving_again_is_200_and_changes_nothing_logs_nothing_wakes_no_one(
    board, agent, approval
):
    first = decide(board, approval, "approve")
    assert first.status_code == 200, first.json()
    approval.refresh_from_db()
    decided_at = approval.decided_at
    events, wakeups, runs = (
        ActivityEvent.objects.count(),
        WakeupRequest.objects.count(),
        HeartbeatRun.objects.count(),
    )

    again = decide(board, approval, "approve")

    assert again.status_code == 200, again.json()
    assert again.json() == first.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at) == ("approved", decided_at)
    assert ActivityEvent.objects.count() == events
    assert WakeupRequest.objects.count() == wakeups
    assert HeartbeatRun.objects.count() == runs


def test_rejecting_an_approved_approval_is_422_naming_the_transition(board, approval):
    decide(board, approval, "approve")
    events = ActivityEvent.objects.count()

    response = decide(board, approval, "reject")

    assert response.status_code == 422
    assert response.json() == {
        "error": "Invalid state transition",
        "code": "invalid_transition",
        "details": {"from": "approved", "to": "rejected", "allowed": []},
    }
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert ActivityEvent.objects.count() == events


def test_board_rejects_a_pending_approval(board, board_user, approval):
    response = decide(board, approval, "reject", note="Too expensive")

    assert response.status_code == 200, response.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by_user_id, approval.decision_note) == (
        "rejected",
        board_user.pk,
        "Too expensive",
    )
    assert sorted_ids(response.json()) == approval_body(approval)
    row = ActivityEvent.objects.get(action="approval.rejected")
    assert row.details["status"] == {"from": "pending", "to": "rejected"}


def test_board_requests_a_revision_and_the_requester_is_told(board, agent, approval):
    response = decide(board, approval, "request-revision", note="Lower the budget")

    assert response.status_code == 200, response.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note) == ("revision_requested", "Lower the budget")
    assert response.json()["status"] == "revision_requested"
    assert sorted_ids(response.json()) == approval_body(approval)
    row = ActivityEvent.objects.get(action="approval.revision_requested")
    assert row.details["status"] == {"from": "pending", "to": "revision_requested"}
    run = HeartbeatRun.objects.get(agent=agent)
    assert (run.context["approvalId"], run.context["approvalStatus"]) == (
        approval.pk,
        "revision_requested",
    )


@pytest.mark.parametrize("verb", ["approve", "reject", "request-revision"])
def test_agents_cannot_decide_403(agent_client, approval, verb):
    response = decide(agent_client, approval, verb)

    assert response.status_code == 403
    assert response.json() == BOARD_ONLY
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at) == ("pending", None)
    assert not ActivityEvent.objects.exists()


# -- resubmit --------------------------------------------------------------------------------


def test_requesting_agent_resubmits_a_revision_back_to_pending(board, agent_client, approval):
    decide(board, approval, "request-revision")

    response = agent_client.post(
        f"/api/approvals/{approval.pk}/resubmit",
        {"payload": {"name": "Designer", "budgetCents": 3000}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at) == ("pending", None)
    assert approval.payload == {"name": "Designer", "budgetCents": 3000}
    assert sorted_ids(response.json()) == approval_body(approval)
    row = ActivityEvent.objects.get(action="approval.resubmitted")
    assert (row.actor_type, row.entity_id) == ("agent", approval.pk)


@pytest.fixture
def colleague_client(company):
    colleague = factories.AgentFactory(company=company, name="Colleague")
    return client_for(factories.AgentApiKeyFactory(agent=colleague).token)


@pytest.mark.parametrize("who", ["board", "colleague_client"])
def test_only_the_requesting_agent_may_resubmit_403(request, board, approval, who):
    decide(board, approval, "request-revision")
    events = ActivityEvent.objects.count()

    response = request.getfixturevalue(who).post(
        f"/api/approvals/{approval.pk}/resubmit", {}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": "Only the requesting agent may resubmit an approval",
        "code": "forbidden",
    }
    approval.refresh_from_db()
    assert approval.status == "revision_requested"
    assert ActivityEvent.objects.count() == events


def test_resubmitting_a_pending_approval_is_422(agent_client, approval):
    response = agent_client.post(f"/api/approvals/{approval.pk}/resubmit", {}, format="json")

    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["code"]) == ("Invalid state transition", "invalid_transition")
    assert (body["details"]["from"], body["details"]["to"]) == ("pending", "pending")
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert not ActivityEvent.objects.exists()


# -- comments --------------------------------------------------------------------------------


def test_agent_and_board_comment_and_the_list_is_oldest_first(
    agent_client, agent, board, board_user, approval
):
    first = agent_client.post(
        f"/api/approvals/{approval.pk}/comments", {"body": "Why a designer?"}, format="json"
    )
    second = board.post(
        f"/api/approvals/{approval.pk}/comments", {"body": "Because UX."}, format="json"
    )

    assert (first.status_code, second.status_code) == (201, 201)
    one, two = first.json(), second.json()
    one_pk, two_pk = stored(one["id"], ApprovalComment), stored(two["id"], ApprovalComment)
    assert one["id"] == wire(ApprovalComment.objects.get(pk=one_pk))
    assert (one["approvalId"], one["authorAgentId"], one["authorUserId"], one["body"]) == (
        wire(approval),
        wire(agent),
        None,
        "Why a designer?",
    )
    assert (two["authorUserId"], two["authorAgentId"], two["body"]) == (
        wire(board_user),
        None,
        "Because UX.",
    )
    listed = agent_client.get(f"/api/approvals/{approval.pk}/comments")
    assert listed.status_code == 200
    assert listed.json() == [one, two]
    assert list(ApprovalComment.objects.values_list("body", flat=True)) == [
        "Why a designer?",
        "Because UX.",
    ]
    rows = ActivityEvent.objects.filter(action="approval.comment_added").order_by("created_at")
    assert [(r.entity_id, r.details["commentId"]) for r in rows] == [
        (approval.pk, one_pk),
        (approval.pk, two_pk),
    ]


@pytest.mark.parametrize("payload", [{"body": ""}, {}], ids=["empty", "missing"])
def test_comment_without_a_body_is_400(agent_client, approval, payload):
    response = agent_client.post(f"/api/approvals/{approval.pk}/comments", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"body"}
    assert not ApprovalComment.objects.exists()
    assert not ActivityEvent.objects.exists()


# -- links from an issue ---------------------------------------------------------------------


def test_issue_links_an_approval_once_and_lists_it(board, company, agent):
    issue = factories.IssueFactory(company=company)
    approval = Approval.objects.create(company=company, type="hire_agent", requested_by_agent=agent)
    url = f"/api/issues/{issue.identifier}/approvals"

    first = board.post(url, {"approvalId": approval.pk}, format="json")
    again = board.post(url, {"approvalId": approval.pk}, format="json")

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["issueIds"] == [wire(issue)]
    assert again.json() == first.json()
    assert list(approval.issues.all()) == [issue]
    row = ActivityEvent.objects.get()  # the repeat logs nothing
    assert (row.action, row.entity_id, row.issue_id) == (
        "approval.issue_linked",
        approval.pk,
        issue.pk,
    )
    listed = board.get(url)
    assert listed.status_code == 200
    assert [sorted_ids(body) for body in listed.json()] == [approval_body(approval)]


def test_linking_another_companys_approval_is_400(board, issue, other_company, other_agent):
    theirs = Approval.objects.create(
        company=other_company, type="hire_agent", requested_by_agent=other_agent
    )

    response = board.post(f"/api/issues/{issue.pk}/approvals", {"approvalId": theirs.pk})

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"approvalId"}
    assert not theirs.issues.exists()
    assert not ActivityEvent.objects.exists()


def test_linking_to_another_companys_issue_is_404(board, approval, other_company):
    theirs = factories.IssueFactory(company=other_company)

    response = board.post(f"/api/issues/{theirs.pk}/approvals", {"approvalId": approval.pk})

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not theirs.approvals.exists()
    assert not ActivityEvent.objects.exists()


# -- another company sees nothing ------------------------------------------------------------


ROUTES = [
    ("get", "/api/approvals/{approval}"),
    ("get", "/api/approvals/{approval}/issues"),
    ("get", "/api/approvals/{approval}/comments"),
    ("post", "/api/approvals/{approval}/comments"),
    ("post", "/api/approvals/{approval}/approve"),
    ("post", "/api/approvals/{approval}/reject"),
    ("post", "/api/approvals/{approval}/request-revision"),
    ("post", "/api/approvals/{approval}/resubmit"),
    ("get", "/api/companies/{company}/approvals"),
    ("post", "/api/companies/{company}/approvals"),
    ("get", "/api/issues/{issue}/approvals"),
    ("post", "/api/issues/{issue}/approvals"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_another_companys_board_gets_404_on_every_approval_route(
    other_board, company, issue, approval, method, path
):
    url = path.format(approval=approval.pk, company=company.pk, issue=issue.pk)
    # Each route gets a body it accepts (an unknown field would be a 400 before any lookup).
    bodies = {
        "/api/approvals/{approval}/comments": {"body": "peek"},
        "/api/companies/{company}/approvals": {"type": "hire_agent"},
        "/api/issues/{issue}/approvals": {"approvalId": approval.pk},
    }

    response = getattr(other_board, method)(url, bodies.get(path, {}), format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at) == ("pending", None)
    assert Approval.objects.count() == 1
    assert not ApprovalComment.objects.exists()
    assert not ActivityEvent.objects.exists()
    assert not HeartbeatRun.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p in ROUTES if not p.endswith(("approve", "reject", "request-revision"))],
)
def test_another_companys_agent_gets_404(other_client, company, issue, approval, method, path):
    url = path.format(approval=approval.pk, company=company.pk, issue=issue.pk)

    data = {"body": "peek"} if path.endswith("comments") else {}

    response = getattr(other_client, method)(url, data, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not ApprovalComment.objects.exists()
    assert not ActivityEvent.objects.exists()
