"""What a client sends is checked at the edge, before any query (found by fuzzing the API).

- A NUL character never reaches PostgreSQL (which refuses it in text): in a JSON body (any
  string, key or value, at any depth) → 400 naming its path; in the URL path → 404; in a query
  parameter, a form field or a header → 400 naming it. Nor does a lone surrogate (`"\\ud800"`),
  which cannot be encoded as UTF-8.
- JSON nested deeper than 32 levels (the body is level 1) → 400 `parse_error`, whether it is
  1,000 levels of `[[[...]]]` or a JSON object field (`payload`) nested too deeply.
- A body over the size limit → 413 naming the limit; uploads have their own limit.

Each test re-reads the database to prove that the refused request wrote nothing.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Approval, Comment, Goal, Issue, Project
from tests import factories

pytestmark = pytest.mark.django_db

NUL = "\x00"
NUL_ERROR = ["NUL characters are not allowed."]
TOO_DEEP = {
    "error": "Malformed request body: JSON nested deeper than 32 levels",
    "code": "parse_error",
    "details": {"maxDepth": 32},
}


def validation_error(details: dict) -> dict:
    return {"error": "Validation failed", "code": "validation_error", "details": details}


def nested(levels: int, leaf=None, key: str | None = None):
    """`levels` nested containers around `leaf`: objects `{"a": ...}` when `key`, else lists."""
    value = leaf
    for _ in range(levels):
        value = {key: value} if key else [value]
    return value


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def run(agent):
    return factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.RUNNING)


@pytest.fixture
def written():
    """Counts of every row a refused request could have written; call it again to compare."""

    def counts() -> dict[str, int]:
        models = [ActivityEvent, Issue, Comment, Approval, Goal, Project, Agent, HeartbeatRun]
        return {model.__name__: model.objects.count() for model in models}

    return counts


# -- NUL in a JSON body ----------------------------------------------------------------------

# (who, method, path, body, details): every id field and JSON object field the fuzzer hit.
NUL_BODIES = [
    (
        "board",
        "post",
        "/api/companies/{company}/issues",
        {"title": "Ship", "parentId": f"ACM-1{NUL}"},
        {"parentId": NUL_ERROR},
    ),
    (
        "board",
        "post",
        "/api/companies/{company}/issues",
        {"title": "Ship", "assigneeAgentId": NUL, "teamId": f"tm_{NUL}"},
        {"assigneeAgentId": NUL_ERROR, "teamId": NUL_ERROR},
    ),
    ("board", "patch", "/api/agents/{agent}", {"reportsTo": NUL}, {"reportsTo": NUL_ERROR}),
    (
        "board",
        "patch",
        "/api/agents/{agent}",
        {"adapterConfig": {"args": ["--fast", f"--out{NUL}"]}},
        {"adapterConfig.args[1]": NUL_ERROR},
    ),
    (
        "board",
        "patch",
        "/api/agents/{agent}",
        {"permissions": {f"canHire{NUL}": True}},
        {"permissions.canHire\\u0000": NUL_ERROR},
    ),
    (
        "board",
        "post",
        "/api/companies/{company}/projects",
        {"name": "Launch", "goalIds": [NUL]},
        {"goalIds[0]": NUL_ERROR},
    ),
    (
        "board",
        "post",
        "/api/companies/{company}/goals",
        {"title": "Grow", "ownerAgentId": NUL},
        {"ownerAgentId": NUL_ERROR},
    ),
    (
        "board",
        "post",
        "/api/issues/{issue}/approvals",
        {"approvalId": NUL},
        {"approvalId": NUL_ERROR},
    ),
    ("board", "post", "/api/issues/{issue}/checkout", {"agentId": NUL}, {"agentId": NUL_ERROR}),
    (
        "agent_client",
        "post",
        "/api/companies/{company}/approvals",
        {"type": "hire_agent", "payload": {"name": "Designer", "note": f"ok{NUL}"}},
        {"payload.note": NUL_ERROR},
    ),
    (
        "board",
        "post",
        "/api/agents/{agent}/wakeup",
        {"reason": "ping", "payload": {"context": {"hint": NUL}}},
        {"payload.context.hint": NUL_ERROR},
    ),
    (
        "agent_client",
        "post",
        "/api/heartbeat-runs/{run}/finish",
        {"status": "succeeded", "result": {"summary": f"done{NUL}"}},
        {"result.summary": NUL_ERROR},
    ),
    ("board", "post", "/api/issues/{issue}/comments", {"body": f"a{NUL}b"}, {"body": NUL_ERROR}),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "details"),
    NUL_BODIES,
    ids=[f"{method} {path} {sorted(details)}" for _, method, path, _, details in NUL_BODIES],
)
def test_nul_anywhere_in_a_json_body_is_400_naming_its_path_and_writes_nothing(
    request, company, agent, issue, run, written, who, method, path, body, details
):
    client = request.getfixturevalue(who)
    url = path.format(company=company.pk, agent=agent.pk, issue=issue.pk, run=run.pk)
    before = written()

    response = getattr(client, method)(url, body, format="json")

    assert response.status_code == 400
    assert response.json() == validation_error(details)
    assert written() == before
    agent.refresh_from_db()
    assert (agent.reports_to_id, agent.adapter_config, agent.permissions) == (None, {}, {})
    run.refresh_from_db()
    assert run.status == HeartbeatRun.Status.RUNNING


def test_nul_in_a_top_level_json_string_is_400(board, company, written):
    before = written()

    response = board.post(
        f"/api/companies/{company.pk}/issues", json.dumps(NUL), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"nonFieldErrors": NUL_ERROR})
    assert written() == before


def test_a_lone_surrogate_in_a_json_object_field_is_400_naming_its_path(
    agent_client, company, written
):
    """`"\\ud800"` decodes to a string PostgreSQL (and the response) cannot encode as UTF-8."""
    before = written()
    body = '{"type": "hire_agent", "payload": {"name": "a\\ud800", "\\udc00": 1}}'

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals", body, content_type="application/json"
    )

    assert response.status_code == 400
    surrogate = ["Unpaired surrogate characters are not allowed."]
    assert response.json() == validation_error(
        {"payload.name": surrogate, "payload.\\udc00": surrogate}
    )
    assert written() == before


@pytest.mark.parametrize("number", ["1e309", "-1e309", "1e999999"])
def test_a_number_too_large_for_a_double_is_400_naming_its_path(
    agent_client, company, written, number
):
    """It parses to infinity, which no JSON column (nor the answer) can hold: it was a 500 on
    /v1 checkpoints (found in review)."""
    before = written()
    body = '{"type": "approve_ceo_strategy", "payload": {"plan": {"cost": ' + number + "}}}"

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == validation_error(
        {"payload.plan.cost": ["Numbers must be finite (this one overflows a double)."]}
    )
    assert written() == before


def test_nul_in_a_form_field_is_400_naming_the_field(board, company, issue, written):
    before = written()

    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": "Ship", "parentId": f"{issue.identifier}{NUL}"},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"parentId": NUL_ERROR})
    assert written() == before


def test_nul_in_a_urlencoded_form_field_is_400_naming_the_field(board, company, written):
    before = written()

    response = board.post(
        f"/api/companies/{company.pk}/issues",
        "title=Ship&assigneeAgentId=%00",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"assigneeAgentId": NUL_ERROR})
    assert written() == before


# -- NUL in the URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/issues/x%00"),
        ("get", "/api/issues/ACM-1%00/comments"),
        ("patch", "/api/issues/%00"),
        ("post", "/api/issues/%00/checkout"),
        ("get", "/api/agents/%00"),
        ("get", "/api/companies/%00/issues"),
        ("post", "/api/heartbeat-runs/run_%00/finish"),
    ],
)
def test_nul_in_the_path_is_404_json(board, issue, written, method, path):
    before = written()

    response = getattr(board, method)(path, {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
    assert written() == before


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/api/issues/{issue}/comments", "after=cmt_%00", "after"),
        ("/api/issues/{issue}/heartbeat-context", "wakeCommentId=%00", "wakeCommentId"),
        (
            "/api/companies/{company}/issues",
            "status=todo&assigneeAgentId=agt%00",
            "assigneeAgentId",
        ),
        ("/api/companies/{company}/issues", "q=%00", "q"),
        ("/api/companies/{company}/activity", "entityId=%00", "entityId"),
        ("/api/companies/{company}/issues", "cursor=%00", "cursor"),
        ("/api/companies/{company}/issues", "x%00y=1", "x\\u0000y"),
    ],
)
def test_nul_in_a_query_parameter_is_400_naming_it(board, company, issue, path, query, parameter):
    url = path.format(company=company.pk, issue=issue.pk)

    response = board.get(f"{url}?{query}")

    assert response.status_code == 400
    assert response.json() == validation_error({parameter: NUL_ERROR})


def test_nul_in_a_header_is_400_naming_it(agent_client, issue):
    response = agent_client.patch(
        f"/api/issues/{issue.pk}",
        {"title": "Renamed"},
        format="json",
        HTTP_X_PAPERCLIP_RUN_ID=f"run_{NUL}",
    )

    assert response.status_code == 400
    assert response.json() == validation_error({"X-Paperclip-Run-Id": NUL_ERROR})
    issue.refresh_from_db()
    assert issue.title != "Renamed"


# -- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000, "[" * 100_000],
    ids=["lists", "objects", "unterminated"],
)
def test_json_nested_a_thousand_levels_deep_is_400_parse_error(board, company, written, body):
    before = written()

    response = board.post(
        f"/api/companies/{company.pk}/issues", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert written() == before


def test_a_json_object_field_nested_past_the_limit_is_400_and_stores_nothing(
    agent_client, company, written
):
    before = written()
    # The body is level 1: a payload of 32 nested objects makes 33 levels.
    payload = nested(32, leaf="deep", key="a")

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": payload},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert written() == before


def test_a_json_object_field_nested_to_the_limit_is_stored(agent_client, company):
    payload = nested(30, leaf={"name": "Designer"}, key="a")  # 31 objects: 32 levels with the body

    response = agent_client.post(
        f"/api/companies/{company.pk}/approvals",
        {"type": "hire_agent", "payload": payload},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["payload"] == payload
    assert Approval.objects.get().payload == payload


# -- size ------------------------------------------------------------------------------------


@pytest.fixture
def small_body_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    return 1000


TOO_LARGE = {
    "error": "Request body too large",
    "code": "payload_too_large",
    "details": {"maxBytes": 1000},
}


def test_a_json_body_over_the_limit_is_413_naming_the_limit(
    board, issue, written, small_body_limit
):
    before = written()

    response = board.post(f"/api/issues/{issue.pk}/comments", {"body": "x" * 2000}, format="json")

    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert written() == before


def test_a_form_body_over_the_limit_is_413(board, issue, written, small_body_limit):
    before = written()

    response = board.post(
        f"/api/issues/{issue.pk}/comments",
        "body=" + "x" * 2000,
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert written() == before


def test_a_multipart_field_over_the_limit_is_413(board, issue, written, small_body_limit):
    before = written()

    response = board.post(
        f"/api/issues/{issue.pk}/comments", {"body": "x" * 2000}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert written() == before


def test_an_upload_larger_than_the_body_limit_is_still_accepted(
    board, company, issue, settings, tmp_path, small_body_limit
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    data = b"x" * 5000  # over the body limit, well under PAPERCLIP_ATTACHMENT_MAX_BYTES

    response = board.post(
        f"/api/companies/{company.pk}/issues/{issue.pk}/attachments",
        {"file": SimpleUploadedFile("build.txt", data, content_type="text/plain")},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["byteSize"] == 5000
