"""The `/v1` wire (DESIGN §8): `whoami`, the `{data, meta}` envelope, `X-Request-Id` on every
answer, the error shape, and unknown routes (404 in that shape, after authentication)."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.conftest import client_for, iso

pytestmark = pytest.mark.django_db

REQUEST_ID = re.compile(r"^req_[0-9a-z]{26}$")


def test_whoami_as_an_agent_names_the_agent_its_company_and_its_key(agent, company):
    key = factories.AgentApiKeyFactory(agent=agent, name="laptop")

    response = client_for(key.token).get("/v1/whoami")

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "type": "agent",
        "id": agent.pk,
        "name": "Builder",
        "companyIds": [company.pk],
        "tokenName": "laptop",
        "createdAt": iso(key.created_at),
    }
    assert body["meta"] == {"requestId": response.headers["X-Request-Id"]}
    assert REQUEST_ID.match(body["meta"]["requestId"])


def test_whoami_as_the_board_names_the_user_and_every_company(board_user, company, other_company):
    factories.MembershipFactory(company=other_company, user=board_user)
    token = factories.BoardTokenFactory(user=board_user, name="ci")

    body = client_for(token.token).get("/v1/whoami").json()["data"]

    assert (body["type"], body["id"], body["name"], body["tokenName"]) == (
        "user",
        board_user.pk,
        "alice",
        "ci",
    )
    assert body["companyIds"] == sorted([company.pk, other_company.pk])


def test_whoami_with_a_run_token_names_its_run(board, agent):
    woken = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json").json()

    body = client_for(woken["runToken"]).get("/v1/whoami").json()["data"]

    assert (body["type"], body["name"]) == ("agent", "Builder")
    assert body["tokenName"].startswith("run:run_")


@pytest.mark.parametrize("path", ["/v1/whoami", "/v1/no/such/route", "/v1"])
def test_without_credentials_every_v1_path_is_401_in_the_v1_shape(path):
    response = APIClient().get(path)

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["message"], error["details"]) == (
        "unauthorized",
        "Unauthorized",
        None,
    )
    assert error["requestId"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_an_unknown_route_is_404_in_the_v1_shape_after_authentication(board, method):
    response = getattr(board, method)("/v1/companies/nope/widgets")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "Not found",
            "details": None,
            "requestId": response.headers["X-Request-Id"],
        }
    }


def test_a_sane_request_id_from_the_proxy_is_kept_and_a_bad_one_replaced(board, company):
    kept = board.get("/v1/whoami", HTTP_X_REQUEST_ID="edge-42:a.b")
    replaced = board.get("/v1/whoami", HTTP_X_REQUEST_ID="no spaces allowed")

    assert kept.headers["X-Request-Id"] == kept.json()["meta"]["requestId"] == "edge-42:a.b"
    assert REQUEST_ID.match(replaced.headers["X-Request-Id"])
    assert replaced.json()["meta"]["requestId"] == replaced.headers["X-Request-Id"]


def test_another_companys_tasks_are_404(other_board, company):
    issue = factories.IssueFactory(company=company)

    listed = other_board.get(f"/v1/companies/{company.pk}/issues")
    read = other_board.get(f"/v1/companies/{company.pk}/issues/{issue.pk}")

    for response in (listed, read):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_task_of_another_company_is_404_under_the_callers_own_company(
    board, company, other_company
):
    theirs = factories.IssueFactory(company=other_company)

    response = board.get(f"/v1/companies/{company.pk}/issues/{theirs.pk}")

    assert response.status_code == 404


def test_the_api_dialect_keeps_its_own_error_shape_and_names_its_request_too(board):
    response = board.get("/api/issues/iss_nope")

    assert response.json() == {"error": "Not found", "code": "not_found"}
    assert REQUEST_ID.match(response.headers["X-Request-Id"])


def test_a_throttled_request_is_429_rate_limited_on_v1_and_throttled_on_api():
    """No route throttles yet (rate limits come with issue 16); the dialects already name it as
    their references do."""
    from rest_framework.exceptions import Throttled

    from paperclip.api.errors import API
    from paperclip.v1.errors import V1

    v1_status, v1_body, v1_headers = V1.answer(None, Throttled(wait=7))
    api_status, api_body, _ = API.answer(None, Throttled(wait=7))

    assert (v1_status, v1_body["error"]["code"], v1_headers) == (
        429,
        "rate_limited",
        {"Retry-After": "7"},
    )
    assert (api_status, api_body["code"]) == (429, "throttled")
