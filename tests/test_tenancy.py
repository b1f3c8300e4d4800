"""Tenancy (DESIGN §4): another company's object answers exactly like a missing one, and an attempt
on it changes nothing. Company listing and creation; read-only (viewer) memberships."""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentApiKey, HeartbeatRun
from companies.models import ActivityEvent, Company, Membership
from issues.models import Comment, Issue, Status
from paperclip.ids import new_id
from tests import factories
from tests.conftest import client_for
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def db_state() -> dict[str, list[dict]]:
    """Every row a request could touch (a key's last use is bookkeeping, not state)."""
    state = {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Company, Membership, Agent, HeartbeatRun, Issue, Comment, ActivityEvent)
    }
    state["AgentApiKey"] = list(
        AgentApiKey.objects.order_by("pk").values("id", "agent_id", "token_hash", "revoked_at")
    )
    return state


def call(client, method: str, url: str, data: dict | None = None):
    return getattr(client, method)(url, data, format="json")


# -- personas and the company's objects ---------------------------------------------------------


@pytest.fixture
def issue(company, agent):
    return factories.IssueFactory(
        company=company, title="Secret plans", status=Status.TODO, assignee_agent=agent
    )


@pytest.fixture
def comment(issue):
    return factories.CommentFactory(issue=issue, body="for our eyes only")


@pytest.fixture
def targets(company, agent, issue, comment):
    """Placeholders of the route table, filled with `company`'s objects."""
    return {"company": company.pk, "agent": agent.pk, "issue": issue.pk, "comment": comment.pk}


def missing_targets() -> dict[str, str]:
    """The same placeholders, naming objects that do not exist anywhere."""
    return {
        "company": new_id("cmp"),
        "agent": new_id("agt"),
        "issue": new_id("iss"),
        "comment": new_id("cmt"),
    }


# (method, url template, body)
ISSUE_ROUTES = [
    ("get", "/api/issues/{issue}", None),
    ("patch", "/api/issues/{issue}", {"title": "Hijacked"}),
    ("patch", "/api/issues/{issue}", {"status": "cancelled"}),
    ("delete", "/api/issues/{issue}", None),
    ("post", "/api/issues/{issue}/reopen", None),
    ("get", "/api/issues/{issue}/comments", None),
    ("post", "/api/issues/{issue}/comments", {"body": "I was here"}),
    ("get", "/api/issues/{issue}/comments/{comment}", None),
    ("get", "/api/issues/{issue}/activity", None),
]
COMPANY_ROUTES = [
    ("get", "/api/companies/{company}", None),
    ("patch", "/api/companies/{company}", {"name": "Hijacked"}),
    ("get", "/api/companies/{company}/issues", None),
    ("post", "/api/companies/{company}/issues", {"title": "Planted"}),
    ("get", "/api/companies/{company}/agents", None),
    ("post", "/api/companies/{company}/agents", {"name": "Mole", "role": "engineer"}),
    ("get", "/api/companies/{company}/activity", None),
]
AGENT_ROUTES = [
    ("get", "/api/agents/{agent}", None),
    ("patch", "/api/agents/{agent}", {"title": "Double agent"}),
    ("post", "/api/agents/{agent}/keys", {"name": "stolen"}),
    ("post", "/api/agents/{agent}/pause", None),
    ("post", "/api/agents/{agent}/resume", None),
    ("post", "/api/agents/{agent}/terminate", None),
]
ROUTES = ISSUE_ROUTES + COMPANY_ROUTES + AGENT_ROUTES


def route_id(route) -> str:
    method, url, data = route
    suffix = f"-{next(iter(data))}" if data and method == "patch" else ""
    return f"{method.upper()} {url}{suffix}"


# Issue routes are tried with the id, the identifier and the lowercase identifier.
CASES = [
    pytest.param(route, ref_kind, id=f"{route_id(route)} by {ref_kind}")
    for route in ROUTES
    for ref_kind in (("id", "identifier", "lowercase") if "{issue}" in route[1] else ("id",))
]


def url_for(template: str, targets: dict[str, str], issue: Issue, ref_kind: str) -> str:
    ref = {"id": issue.pk, "identifier": issue.identifier, "lowercase": issue.identifier.lower()}
    return template.format(**{**targets, "issue": ref[ref_kind]})


# -- another company's objects are invisible ------------------------------------------------------


@pytest.mark.parametrize(("route", "ref_kind"), CASES)
def test_other_companys_board_gets_404_on_every_route_and_changes_nothing(
    other_board, targets, issue, route, ref_kind
):
    method, template, data = route
    url = url_for(template, targets, issue, ref_kind)
    before = db_state()

    response = call(other_board, method, url, data)

    assert response.status_code == 404, response.content
    assert response.json() == NOT_FOUND
    assert db_state() == before


@pytest.mark.parametrize(("route", "ref_kind"), CASES)
def test_other_companys_agent_learns_nothing_on_every_route_and_changes_nothing(
    other_client, targets, issue, route, ref_kind
):
    """Every route answers 404, board-only ones too (DESIGN §4): the object is looked up in the
    caller's scope before the service asks who may act, so the answer is the same as for a
    missing object."""
    method, template, data = route
    url = url_for(template, targets, issue, ref_kind)
    missing_url = template.format(**missing_targets())
    before = db_state()

    response = call(other_client, method, url, data)

    assert response.status_code == 404, response.content
    assert response.json() == NOT_FOUND
    missing = call(other_client, method, missing_url, data)
    assert (response.status_code, response.json()) == (missing.status_code, missing.json())
    assert db_state() == before


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_the_companys_own_board_reaches_every_route(board, targets, route):
    """The control for the tests above: the 404s come from tenancy, not from broken routes."""
    method, template, data = route

    response = call(board, method, template.format(**targets), data)

    assert response.status_code != 404, response.content
    assert response.status_code < 500


def test_other_companys_issues_are_absent_from_list_and_search(other_board, other_company, issue):
    own = factories.IssueFactory(company=other_company, title="Globex plans")

    listed = other_board.get(f"/api/companies/{other_company.pk}/issues")
    searched = other_board.get(f"/api/companies/{other_company.pk}/issues", {"q": "Secret"})

    assert [row["id"] for row in listed.json()] == [wire(own)]
    assert searched.json() == []


def test_other_companys_agent_cannot_be_named_as_assignee(board, company, other_agent):
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Outsource it", "assigneeAgentId": other_agent.pk},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["details"])) == ("validation_error", ["assigneeAgentId"])
    assert not Issue.objects.exists()


def test_other_companys_board_user_cannot_be_named_as_assignee(board, company, other_company):
    mallory = factories.MembershipFactory(company=other_company, user__username="mallory").user

    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Outsource it", "assigneeUserId": mallory.pk},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["details"]) == ["assigneeUserId"]
    assert not Issue.objects.exists()


def test_company_activity_holds_only_that_companys_rows(
    board, other_board, company, other_company, issue
):
    board.patch(f"/api/issues/{issue.pk}", {"title": "Ours"}, format="json")
    theirs = other_board.post(
        f"/api/companies/{other_company.pk}/issues", {"title": "Theirs"}, format="json"
    ).json()

    ours = board.get(f"/api/companies/{company.pk}/activity")
    probe = board.get(
        f"/api/companies/{company.pk}/activity", {"entityType": "issue", "entityId": theirs["id"]}
    )

    assert [(row["action"], row["entityId"]) for row in ours.json()] == [
        ("issue.updated", wire(issue))
    ]
    assert probe.json() == []


# -- bad ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/issues/{missing_issue}",
        "/api/issues/ACM-999",
        "/api/issues/not-an-id",
        "/api/issues/iss_",
        "/api/issues/{missing_issue}/comments",
        "/api/issues/{missing_issue}/activity",
        "/api/issues/{issue}/comments/{missing_comment}",
        "/api/issues/{issue}/comments/garbage",
        "/api/issues/{issue}/comments/{comment_of_another_issue}",
        "/api/companies/{missing_company}",
        "/api/companies/garbage",
        "/api/companies/{missing_company}/issues",
        "/api/companies/{missing_company}/agents",
        "/api/companies/{missing_company}/activity",
        "/api/agents/{missing_agent}",
        "/api/agents/garbage",
    ],
)
def test_unknown_or_malformed_id_gets_404(board, company, issue, path):
    elsewhere = factories.CommentFactory(issue=factories.IssueFactory(company=company))
    url = path.format(
        issue=issue.pk,
        missing_issue=new_id("iss"),
        missing_comment=new_id("cmt"),
        comment_of_another_issue=elsewhere.pk,
        missing_company=new_id("cmp"),
        missing_agent=new_id("agt"),
    )

    response = board.get(url)

    assert response.status_code == 404, response.content
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("method", "data"),
    [("patch", {"title": "x"}), ("delete", None), ("post", None)],
    ids=["patch", "delete", "reopen"],
)
def test_writes_to_an_unknown_issue_get_404(board, company, method, data):
    url = f"/api/issues/{new_id('iss')}" + ("/reopen" if method == "post" else "")

    response = call(board, method, url, data)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# -- the company list ---------------------------------------------------------------------------


def test_board_lists_only_its_own_companies(board, company, other_company):
    response = board.get("/api/companies")

    assert response.status_code == 200
    assert [(row["id"], row["issuePrefix"]) for row in response.json()] == [(wire(company), "ACM")]


def test_agent_lists_only_its_own_company(agent_client, other_client, company, other_company):
    ours = agent_client.get("/api/companies")
    theirs = other_client.get("/api/companies")

    assert [row["id"] for row in ours.json()] == [wire(company)]
    assert [row["id"] for row in theirs.json()] == [wire(other_company)]


def test_board_member_of_two_companies_lists_both(board_user, board, company, other_company):
    factories.MembershipFactory(user=board_user, company=other_company, role="member")

    response = board.get("/api/companies")

    assert [row["name"] for row in response.json()] == ["Acme Robotics", "Globex"]


def test_board_user_without_memberships_lists_no_companies(company):
    loner = factories.UserFactory(username="loner")
    client = client_for(factories.BoardTokenFactory(user=loner).token)

    response = client.get("/api/companies")

    assert (response.status_code, response.json()) == (200, [])


def test_instance_admin_lists_every_company_without_membership(
    admin_client, company, other_company
):
    response = admin_client.get("/api/companies")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == wire([company, other_company])


def test_instance_admin_reads_any_company(admin_client, company):
    response = admin_client.get(f"/api/companies/{company.pk}")

    assert (response.status_code, response.json()["name"]) == (200, "Acme Robotics")


# -- creating companies -------------------------------------------------------------------------


def test_instance_admin_creates_a_company_and_becomes_its_owner(admin_client, admin_user):
    response = admin_client.post(
        "/api/companies", {"name": "Acme", "description": "Rockets"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("name", "description", "issuePrefix", "issueCounter")} == {
        "name": "Acme",
        "description": "Rockets",
        "issuePrefix": "ACM",
        "issueCounter": 0,
    }
    assert body["status"] == "active"
    company = Company.objects.get(pk=stored(body["id"], Company))
    assert (company.name, company.issue_prefix) == ("Acme", "ACM")
    membership = Membership.objects.get(company=company)
    assert (membership.user, membership.role) == (admin_user, "owner")
    activity = ActivityEvent.objects.get(company=company)
    assert (activity.action, activity.actor_type, activity.actor_id) == (
        "company.created",
        "user",
        admin_user.pk,
    )


def test_issue_prefixes_are_made_unique_with_a_suffix(admin_client):
    prefixes = [
        admin_client.post("/api/companies", {"name": name}, format="json").json()["issuePrefix"]
        for name in ("Acme", "Acme Corp", "ACME Industries")
    ]

    assert prefixes == ["ACM", "ACM2", "ACM3"]
    assert sorted(Company.objects.values_list("issue_prefix", flat=True)) == prefixes


def test_new_companys_issues_are_numbered_with_its_prefix(admin_client):
    company_id = admin_client.post("/api/companies", {"name": "Acme"}, format="json").json()["id"]

    response = admin_client.post(
        f"/api/companies/{company_id}/issues", {"title": "First"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["identifier"] == "ACM-1"


def test_creating_a_company_without_a_name_is_a_validation_error(admin_client):
    response = admin_client.post("/api/companies", {"name": ""}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"], list(body["details"])) == (
        "Validation failed",
        "validation_error",
        ["name"],
    )
    assert not Company.objects.exists()


def test_board_user_who_is_not_instance_admin_cannot_create_a_company(board, company):
    response = board.post("/api/companies", {"name": "Rogue"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert list(Company.objects.values_list("name", flat=True)) == ["Acme Robotics"]


def test_agent_cannot_create_a_company(agent_client, company):
    response = agent_client.post("/api/companies", {"name": "Skynet"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert list(Company.objects.values_list("name", flat=True)) == ["Acme Robotics"]


# -- viewers read, never write ------------------------------------------------------------------


@pytest.fixture
def viewer(company):
    user = factories.MembershipFactory(company=company, user__username="vera", role="viewer").user
    return client_for(factories.BoardTokenFactory(user=user).token)


def test_viewer_can_read_the_companys_issues(viewer, company, issue, comment):
    detail = viewer.get(f"/api/issues/{issue.identifier}")
    listed = viewer.get(f"/api/companies/{company.pk}/issues")
    comments = viewer.get(f"/api/issues/{issue.pk}/comments")

    assert (detail.status_code, detail.json()["title"]) == (200, "Secret plans")
    assert [row["id"] for row in listed.json()] == [wire(issue)]
    assert [row["id"] for row in comments.json()] == [wire(comment)]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("patch", "/api/issues/{issue}", {"title": "Edited by a viewer"}),
        ("post", "/api/companies/{company}/issues", {"title": "Viewer's idea"}),
        ("post", "/api/issues/{issue}/comments", {"body": "Viewer says hi"}),
        ("delete", "/api/issues/{issue}", None),
        ("patch", "/api/companies/{company}", {"name": "Viewer Inc"}),
        ("post", "/api/companies/{company}/agents", {"name": "Viewer's bot"}),
        ("post", "/api/agents/{agent}/pause", None),
        ("post", "/api/agents/{agent}/keys", {"name": "viewer"}),
    ],
    ids=[
        "patch-issue",
        "create-issue",
        "comment",
        "delete-issue",
        "patch-company",
        "hire",
        "pause-agent",
        "create-key",
    ],
)
def test_viewer_cannot_write(viewer, company, agent, issue, method, path, data):
    before = db_state()
    url = path.format(issue=issue.pk, company=company.pk, agent=agent.pk)

    response = call(viewer, method, url, data)

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "forbidden"
    assert db_state() == before
