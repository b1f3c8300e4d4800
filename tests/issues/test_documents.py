"""Issue documents (`plan`, `design`, `notes`, ...): create and revise with a base revision,
the three 409s, validation, revisions newest first, board-only delete, the issue's
planDocument/documentSummaries, the activity rows, agent rules and tenancy (DESIGN §6)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from companies.models import ActivityEvent
from issues.models import Document, DocumentRevision
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
PLAN = "# Plan\n\n1. Cache the hot queries\n2. Measure\n"
KIB = 1024


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def other_board(other_company):
    """The board owner of the other company, with its own token."""
    user = factories.MembershipFactory(company=other_company, user__username="olga").user
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.BoardTokenFactory(user=user).token}")
    return client


def agent_client(agent, run=None) -> APIClient:
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {factories.AgentApiKeyFactory(agent=agent).token}"}
    if run is not None:
        headers["HTTP_X_PAPERCLIP_RUN_ID"] = run.pk
    client.credentials(**headers)
    return client


def doc_url(issue, key: str = "plan") -> str:
    return f"/api/issues/{issue.pk}/documents/{key}"


def put(client, issue, key: str = "plan", **fields):
    payload = {"title": "Implementation plan", "format": "markdown", "body": PLAN, **fields}
    return client.put(doc_url(issue, key), payload, format="json")


def revise(client, issue, key: str = "plan", **fields):
    """PUT naming the document's current revision as the base."""
    base = Document.objects.get(issue=issue, key=key).latest_revision_id
    return put(client, issue, key, baseRevisionId=base, **fields)


def activity(issue) -> list[str]:
    rows = ActivityEvent.objects.filter(issue_id=issue.pk).order_by("created_at", "id")
    return list(rows.values_list("action", flat=True))


# -- create and revise -----------------------------------------------------------------------


def test_put_without_a_base_creates_the_document_201(board, board_user, company, issue):
    response = put(board, issue, changeSummary="First draft")

    assert response.status_code == 201, response.json()
    body = response.json()
    document = Document.objects.get()
    revision = DocumentRevision.objects.get()
    assert body == {
        "id": wire(document),
        "companyId": wire(company),
        "issueId": wire(issue),
        "key": "plan",
        "title": "Implementation plan",
        "format": "markdown",
        "body": PLAN,
        "latestRevisionId": wire(revision),
        "revisionNumber": 1,
        "createdAt": body["createdAt"],
        "updatedAt": body["updatedAt"],
    }
    assert document.pk.startswith("doc_") and revision.pk.startswith("rev_")
    assert (document.issue_id, document.key, document.body) == (issue.pk, "plan", PLAN)
    assert (revision.number, revision.body, revision.change_summary) == (1, PLAN, "First draft")
    assert (revision.author_user_id, revision.author_agent_id) == (board_user.pk, None)


def test_put_with_the_current_base_revises_the_document_200(board, issue):
    first = put(board, issue).json()

    response = put(
        board,
        issue,
        title="Plan v2",
        body="# Plan\n\nRevised.\n",
        changeSummary="Tighter scope",
        baseRevisionId=first["latestRevisionId"],
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["title"], body["body"], body["revisionNumber"]) == (
        first["id"],
        "Plan v2",
        "# Plan\n\nRevised.\n",
        2,
    )
    assert body["latestRevisionId"] != first["latestRevisionId"]
    document = Document.objects.get()
    assert (document.title, document.body, document.latest_revision_id) == (
        "Plan v2",
        "# Plan\n\nRevised.\n",
        stored(body["latestRevisionId"], DocumentRevision),
    )
    assert list(document.revisions.values_list("number", flat=True)) == [2, 1]


def test_any_valid_key_names_its_own_document(board, issue):
    keys = ["design", "notes", "release-notes_2", "0day", "a" * 64]

    responses = [put(board, issue, key, body=f"about {key}") for key in keys]

    assert [r.status_code for r in responses] == [201] * len(keys)
    stored = dict(Document.objects.filter(issue=issue).values_list("key", "body"))
    assert stored == {key: f"about {key}" for key in keys}


def test_format_defaults_to_markdown_and_title_to_empty(board, issue):
    response = board.put(doc_url(issue, "notes"), {"body": "n"}, format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["format"], response.json()["title"]) == ("markdown", "")


def test_body_of_exactly_512_kib_is_accepted(board, issue):
    response = put(board, issue, body="x" * (512 * KIB))

    assert response.status_code == 201, response.json()
    assert len(Document.objects.get().body) == 512 * KIB


# -- the three conflicts ---------------------------------------------------------------------


def test_update_without_a_base_is_409_naming_the_current_revision(board, issue):
    first = put(board, issue).json()

    response = put(board, issue, body="overwrite!")

    assert response.status_code == 409
    assert response.json() == {
        "error": "Document update requires baseRevisionId",
        "code": "document_base_required",
        "details": {"currentRevisionId": first["latestRevisionId"]},
    }
    assert Document.objects.get().body == PLAN
    assert DocumentRevision.objects.count() == 1


def test_update_with_a_stale_base_is_409_naming_the_current_revision(board, issue):
    first = put(board, issue).json()
    second = put(board, issue, body="second", baseRevisionId=first["latestRevisionId"]).json()

    response = put(board, issue, body="lost update", baseRevisionId=first["latestRevisionId"])

    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["code"]) == (
        "Document was updated by someone else",
        "document_stale_base",
    )
    assert body["details"]["currentRevisionId"] == second["latestRevisionId"]
    assert Document.objects.get().body == "second"
    assert DocumentRevision.objects.count() == 2


def test_a_base_for_a_document_that_does_not_exist_is_409_naming_the_key(board, issue):
    response = put(board, issue, "design", baseRevisionId="rev_00000000000000000000000000")

    assert response.status_code == 409
    assert response.json() == {
        "error": "Document does not exist yet",
        "code": "document_missing",
        "details": {"key": "design"},
    }
    assert not Document.objects.exists()
    assert activity(issue) == []


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["Plan", "my%20plan", "-plan", "_plan", "plan.md", "a" * 65],
    ids=["uppercase", "space", "leading-dash", "leading-underscore", "dot", "65-chars"],
)
def test_put_with_a_bad_key_is_400(board, issue, key):
    response = put(board, issue, key)

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Invalid document key", "validation_error")
    assert set(body["details"]) == {"key"}
    assert not Document.objects.exists()
    assert activity(issue) == []


@pytest.mark.parametrize(
    "body",
    ["x" * (512 * KIB + 1), "é" * (256 * KIB + 1)],
    ids=["ascii", "two-byte-characters"],
)
def test_body_over_512_kib_is_400(board, issue, body):
    response = put(board, issue, body=body)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"body"}
    assert not Document.objects.exists()


@pytest.mark.parametrize("fmt", ["html", "", None], ids=["html", "empty", "null"])
def test_a_format_other_than_markdown_is_400(board, issue, fmt):
    response = put(board, issue, format=fmt)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"format"}
    assert not Document.objects.exists()


def test_put_without_a_body_is_400(board, issue):
    response = board.put(doc_url(issue), {"title": "No body"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["details"]) == {"body"}
    assert not Document.objects.exists()


def test_an_oversized_update_leaves_the_document_as_it_was(board, issue):
    first = put(board, issue).json()

    response = put(
        board, issue, body="x" * (512 * KIB + 1), baseRevisionId=first["latestRevisionId"]
    )

    assert response.status_code == 400
    assert Document.objects.get().body == PLAN
    assert DocumentRevision.objects.count() == 1


# -- read ------------------------------------------------------------------------------------


def test_list_answers_every_document_with_its_body_in_key_order(
    board, company, issue, django_assert_num_queries
):
    for key in ["plan", "notes", "design"]:
        put(board, issue, key, body=f"{key} body")
    put(board, factories.IssueFactory(company=company), "zzz")
    revise(board, issue, "notes", body="notes body v2")

    # The request's savepoint and its release (one transaction per request), the board token
    # with its user, the user's memberships, the issue, and the documents with their latest
    # revisions (one query for all).
    with django_assert_num_queries(6):
        response = board.get(f"/api/issues/{issue.pk}/documents")

    assert response.status_code == 200
    rows = response.json()
    assert [(r["key"], r["body"], r["revisionNumber"]) for r in rows] == [
        ("design", "design body", 1),
        ("notes", "notes body v2", 2),
        ("plan", "plan body", 1),
    ]
    assert rows[0] == board.get(doc_url(issue, "design")).json()


def test_list_of_an_issue_without_documents_is_empty(board, issue):
    response = board.get(f"/api/issues/{issue.pk}/documents")

    assert response.status_code == 200
    assert response.json() == []


def test_get_by_key_answers_the_document(board, issue):
    created = put(board, issue).json()

    response = board.get(doc_url(issue))

    assert response.status_code == 200
    assert response.json() == created


def test_documents_are_addressable_by_the_issue_identifier(board, issue):
    put(board, issue)

    response = board.get(f"/api/issues/{issue.identifier.lower()}/documents/plan")

    assert response.status_code == 200
    assert response.json()["body"] == PLAN


def test_get_of_a_missing_key_is_404(board, issue):
    put(board, issue, "notes")

    response = board.get(doc_url(issue, "plan"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_documents_of_an_unknown_issue_are_404(board, company):
    response = board.get("/api/issues/iss_00000000000000000000000000/documents")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_put_on_an_unknown_issue_is_404(board, company):
    response = board.put(
        "/api/issues/iss_00000000000000000000000000/documents/plan", {"body": "x"}, format="json"
    )

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Document.objects.exists()


def test_revisions_are_listed_newest_first_with_their_authors(board, board_user, issue, agent):
    put(board, issue, title="Plan", body="v1", changeSummary="draft")
    revise(agent_client(agent), issue, title="Plan", body="v2", changeSummary="agent edits")
    revise(board, issue, title="Final plan", body="v3", changeSummary="sign-off")

    response = board.get(f"{doc_url(issue)}/revisions")

    assert response.status_code == 200
    rows = response.json()
    assert [
        (
            r["number"],
            r["title"],
            r["body"],
            r["changeSummary"],
            r["authorAgentId"],
            r["authorUserId"],
        )
        for r in rows
    ] == [
        (3, "Final plan", "v3", "sign-off", None, wire(board_user)),
        (2, "Plan", "v2", "agent edits", wire(agent), None),
        (1, "Plan", "v1", "draft", None, wire(board_user)),
    ]
    document = Document.objects.get()
    assert all(r["documentId"] == wire(document) for r in rows)
    assert rows[0]["id"] == wire(document.latest_revision_id)
    revisions = document.revisions.order_by("-number").values_list("pk", flat=True)
    assert [r["id"] for r in rows] == wire(list(revisions))


def test_revisions_of_a_missing_document_are_404(board, issue):
    response = board.get(f"{doc_url(issue)}/revisions")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- delete ----------------------------------------------------------------------------------


def test_board_delete_is_204_and_the_document_is_gone(board, issue):
    put(board, issue)
    revise(board, issue, body="v2")

    response = board.delete(doc_url(issue))

    assert response.status_code == 204
    assert board.get(doc_url(issue)).status_code == 404
    assert board.get(f"{doc_url(issue)}/revisions").status_code == 404
    assert board.delete(doc_url(issue)).status_code == 404
    assert not Document.objects.exists()
    assert not DocumentRevision.objects.exists()


def test_a_deleted_key_can_be_created_again_from_scratch(board, issue):
    put(board, issue)
    board.delete(doc_url(issue))

    response = put(board, issue, body="fresh")

    assert response.status_code == 201, response.json()
    assert response.json()["revisionNumber"] == 1


def test_agent_cannot_delete_a_document(agent, issue, board):
    put(board, issue)

    response = agent_client(agent).delete(doc_url(issue))

    assert response.status_code == 403
    assert response.json() == {"error": "Board access required", "code": "forbidden"}
    assert Document.objects.get().body == PLAN
    assert "document.deleted" not in activity(issue)


# -- the issue shows its documents -----------------------------------------------------------


def test_issue_without_documents_has_no_plan_and_no_summaries(board, issue):
    response = board.get(f"/api/issues/{issue.pk}")

    assert response.status_code == 200
    assert response.json()["planDocument"] is None
    assert response.json()["documentSummaries"] == []


def test_issue_shows_the_plan_document_in_full_and_summaries_without_bodies(board, issue):
    put(board, issue, "plan")
    put(board, issue, "notes", title="Notes", body="scratch")
    revise(board, issue, "plan", body="# Plan v2\n")

    response = board.get(f"/api/issues/{issue.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["planDocument"] == board.get(doc_url(issue, "plan")).json()
    assert body["planDocument"]["body"] == "# Plan v2\n"
    summaries = body["documentSummaries"]
    assert [(s["key"], s["title"], s["revisionNumber"]) for s in summaries] == [
        ("notes", "Notes", 1),
        ("plan", "Implementation plan", 2),
    ]
    assert all("body" not in s for s in summaries)
    notes = board.get(doc_url(issue, "notes")).json()
    assert summaries[0] == {k: v for k, v in notes.items() if k != "body"}


def test_issue_without_a_plan_has_a_null_plan_but_lists_its_other_documents(board, issue):
    put(board, issue, "design")

    body = board.get(f"/api/issues/{issue.pk}").json()

    assert body["planDocument"] is None
    assert [s["key"] for s in body["documentSummaries"]] == ["design"]


# -- activity --------------------------------------------------------------------------------


def test_create_revise_and_delete_appear_in_the_issue_activity(board, board_user, issue):
    created = put(board, issue, changeSummary="draft").json()
    revised = revise(board, issue, body="v2", changeSummary="edits").json()
    board.delete(doc_url(issue))

    response = board.get(f"/api/issues/{issue.pk}/activity")

    assert response.status_code == 200
    rows = [r for r in response.json() if r["action"].startswith("document.")]
    assert [
        (r["action"], r["entityType"], r["entityId"], r["issueId"], r["actorId"]) for r in rows
    ] == [
        ("document.deleted", "document", created["id"], wire(issue), wire(board_user)),
        ("document.revised", "document", created["id"], wire(issue), wire(board_user)),
        ("document.created", "document", created["id"], wire(issue), wire(board_user)),
    ]
    deleted, revised_row, created_row = rows
    assert created_row["details"] == {
        "key": "plan",
        "revisionId": created["latestRevisionId"],
        "revision": 1,
        "changeSummary": "draft",
    }
    assert revised_row["details"] == {
        "key": "plan",
        "revisionId": revised["latestRevisionId"],
        "revision": 2,
        "changeSummary": "edits",
    }
    assert deleted["details"] == {"key": "plan", "revisions": 2}


def test_a_refused_put_writes_no_activity(board, issue):
    put(board, issue)

    put(board, issue, body="no base")
    put(board, issue, "Bad Key")

    assert activity(issue) == ["document.created"]


# -- agents ----------------------------------------------------------------------------------


def test_agent_may_write_on_an_unassigned_issue(agent, issue):
    response = put(agent_client(agent), issue)

    assert response.status_code == 201, response.json()
    revision = DocumentRevision.objects.get()
    assert (revision.author_agent_id, revision.author_user_id) == (agent.pk, None)


def test_agent_may_write_on_its_own_todo_issue(agent, company):
    own = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = put(agent_client(agent), own)

    assert response.status_code == 201, response.json()
    assert Document.objects.get().issue_id == own.pk


def test_agent_cannot_write_on_another_agents_todo_issue(agent, company):
    colleague = factories.AgentFactory(company=company, name="Colleague")
    theirs = factories.IssueFactory(company=company, status="todo", assignee_agent=colleague)

    response = put(agent_client(agent), theirs)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Document.objects.exists()
    assert activity(theirs) == []


def test_agent_cannot_write_on_another_agents_checked_out_issue(agent, company):
    colleague = factories.AgentFactory(company=company, name="Colleague")
    run = factories.HeartbeatRunFactory(agent=colleague, status="running")
    theirs = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=colleague, checkout_run=run
    )
    own_run = factories.HeartbeatRunFactory(agent=agent, status="running")

    response = put(agent_client(agent, own_run), theirs)

    assert response.status_code == 409
    assert response.json()["error"] == "Issue is checked out by another agent"
    assert not Document.objects.exists()


def test_agent_on_its_in_progress_issue_needs_the_run_id(agent, company):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    own = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )

    response = put(agent_client(agent), own)

    assert response.status_code == 401
    assert response.json() == {"error": "Agent run id required", "code": "run_id_required"}
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Document.objects.exists()


def test_agent_on_its_in_progress_issue_writes_with_the_holding_run(agent, company):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    own = factories.IssueFactory(
        company=company, status="in_progress", assignee_agent=agent, checkout_run=run
    )

    response = put(agent_client(agent, run), own)

    assert response.status_code == 201, response.json()
    revision = DocumentRevision.objects.get()
    assert (revision.author_agent_id, revision.run_id) == (agent.pk, run.pk)
    row = ActivityEvent.objects.get(action="document.created")
    assert (row.actor_id, row.run_id) == (agent.pk, run.pk)


def test_any_agent_of_the_company_may_read_documents(board, company, issue):
    put(board, issue)
    reader = factories.AgentFactory(company=company, name="Reader")

    response = agent_client(reader).get(f"/api/issues/{issue.pk}/documents")

    assert response.status_code == 200
    assert [d["key"] for d in response.json()] == ["plan"]


# -- another company sees nothing ------------------------------------------------------------


ROUTES = {
    "list": ("get", "/documents", None),
    "get": ("get", "/documents/plan", None),
    "put-create": ("put", "/documents/notes", {"body": "intruder"}),
    "put-revise": ("put", "/documents/plan", {"body": "intruder"}),
    "revisions": ("get", "/documents/plan/revisions", None),
    "delete": ("delete", "/documents/plan", None),
}


@pytest.mark.parametrize(
    ("caller", "route"),
    [
        *[("other_board", route) for route in ROUTES],
        # Delete is board-only: an agent is refused before any lookup (next test).
        *[("other_client", route) for route in ROUTES if route != "delete"],
    ],
)
def test_another_company_gets_404_on_every_document_route(board, issue, request, caller, route):
    created = put(board, issue).json()
    method, suffix, payload = ROUTES[route]
    if route == "put-revise":
        payload = {**payload, "baseRevisionId": created["latestRevisionId"]}
    client = request.getfixturevalue(caller)

    response = getattr(client, method)(f"/api/issues/{issue.pk}{suffix}", payload, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert list(Document.objects.values_list("key", "body")) == [("plan", PLAN)]
    assert DocumentRevision.objects.count() == 1
    assert activity(issue) == ["document.created"]


def test_another_companys_agent_deleting_gets_the_same_answer_as_for_a_missing_document(
    board, issue, other_client
):
    put(board, issue)

    response = other_client.delete(doc_url(issue))
    missing = other_client.delete("/api/issues/iss_00000000000000000000000000/documents/plan")

    # DESIGN §4: another company's document is a 404, exactly like a missing one, even on a
    # board-only route (the object is looked up before anyone asks who may delete it).
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == NOT_FOUND
    assert Document.objects.get().body == PLAN


def test_anonymous_caller_is_401(anon, issue):
    response = anon.get(f"/api/issues/{issue.pk}/documents")

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}
