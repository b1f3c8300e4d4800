"""Conditional GET on both dialects (DESIGN §10): every GET answered 200 carries an `ETag`;
`If-None-Match` naming it (weak comparison, RFC 9110) → 304 with no body and the same `ETag`.
The tag stays the same from one request to the next while the answer does (`/v1`'s per-request
`meta.requestId` and the `X-Request-Id` header are not part of it) and changes with the rows or
the page. A view's own `ETag` (an issue's version) is the one compared."""

from __future__ import annotations

import pytest

from issues.models import Issue, Priority
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def issues(company):
    return [factories.IssueFactory(company=company, title=f"Task {n}") for n in range(3)]


def api_list(company) -> str:
    return f"/api/companies/{company.pk}/issues"


def v1_list(company) -> str:
    return f"/v1/companies/{company.pk}/issues"


@pytest.mark.parametrize("url", [api_list, v1_list], ids=["api", "v1"])
def test_a_list_answers_304_to_its_etag(board, company, issues, url):
    first = board.get(url(company))
    assert first.status_code == 200
    etag = first["ETag"]

    again = board.get(url(company), HTTP_IF_NONE_MATCH=etag)

    assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
    assert again["X-Request-Id"]  # still named, like every API answer
    assert "Content-Type" not in again


def test_the_v1_etag_leaves_out_the_request_id(board, company, issues):
    first = board.get(v1_list(company), HTTP_X_REQUEST_ID="client-1")
    second = board.get(v1_list(company))  # a fresh req_... id

    assert first.json()["meta"]["requestId"] != second.json()["meta"]["requestId"]
    assert first["ETag"] == second["ETag"]
    third = board.get(v1_list(company), HTTP_IF_NONE_MATCH=first["ETag"], HTTP_X_REQUEST_ID="x")
    assert (third.status_code, third["X-Request-Id"]) == (304, "x")


@pytest.mark.parametrize("url", [api_list, v1_list], ids=["api", "v1"])
def test_a_changed_list_is_200_with_a_new_etag(board, company, issues, url):
    etag = board.get(url(company))["ETag"]
    factories.IssueFactory(company=company, title="New work")

    again = board.get(url(company), HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 200
    assert again["ETag"] != etag
    assert "New work" in again.content.decode()


def test_a_page_that_gained_a_next_page_has_a_new_etag(board, company):
    factories.IssueFactory(company=company, title="Only", priority=Priority.CRITICAL)
    first = board.get(api_list(company), {"limit": 1})
    assert not first.has_header("X-Next-Cursor")
    factories.IssueFactory(company=company, title="Later", priority=Priority.LOW)  # sorts after

    again = board.get(api_list(company), {"limit": 1}, HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 200
    assert again.content == first.content  # the same rows...
    assert again["ETag"] != first["ETag"]  # ...but now with a next page
    assert again.has_header("X-Next-Cursor")


@pytest.mark.parametrize(
    "header",
    [
        "W/{etag}",  # weak comparison: W/ does not matter
        '"nope", {etag}',  # any of a list
        "*",
    ],
)
def test_if_none_match_uses_weak_comparison(board, company, issues, header):
    etag = board.get(api_list(company))["ETag"]

    again = board.get(api_list(company), HTTP_IF_NONE_MATCH=header.format(etag=etag))

    assert again.status_code == 304


@pytest.mark.parametrize("header", ['"nope"', "garbage", ""])
def test_a_tag_that_does_not_match_answers_the_list(board, company, issues, header):
    response = board.get(api_list(company), HTTP_IF_NONE_MATCH=header)

    assert response.status_code == 200
    assert len(response.json()) == 3


def test_issue_detail_keeps_its_own_etag_and_answers_304_to_it(board, issues):
    issue = issues[0]
    first = board.get(f"/api/issues/{issue.pk}")
    assert first["ETag"] == f'"{issue.version}"'

    again = board.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (again.status_code, again.content, again["ETag"]) == (304, b"", first["ETag"])


def test_issue_detail_after_a_change_is_200_with_the_new_version(board, issues):
    issue = issues[0]
    etag = board.get(f"/api/issues/{issue.pk}")["ETag"]
    patched = board.patch(f"/api/issues/{issue.pk}", {"title": "Renamed"}, format="json")
    assert patched.status_code == 200

    again = board.get(f"/api/issues/{issue.pk}", HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 200
    assert again["ETag"] == f'"{Issue.objects.get(pk=issue.pk).version}"' != etag
    assert again.json()["title"] == "Renamed"


def test_a_v1_task_keeps_its_own_etag_and_answers_304_to_it(board, company, issues):
    url = f"/v1/companies/{company.pk}/issues/{issues[0].pk}"
    first = board.get(url)

    again = board.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["ETag"] == f'"{issues[0].version}"'
    assert (again.status_code, again.content) == (304, b"")


def test_errors_and_writes_carry_no_content_etag(board, company, other_company):
    missing = board.get(f"/api/companies/{other_company.pk}/issues")
    created = board.post(api_list(company), {"title": "Fresh"}, format="json")

    assert missing.status_code == 404 and not missing.has_header("ETag")
    assert created.status_code == 201
    assert created["ETag"] == Issue.objects.get(title="Fresh").etag  # the issue's own, as before


def test_if_none_match_on_a_write_changes_nothing(board, company, issues):
    etag = board.get(api_list(company))["ETag"]

    response = board.post(
        api_list(company), {"title": "Fresh"}, format="json", HTTP_IF_NONE_MATCH=etag
    )

    assert response.status_code == 201
    assert Issue.objects.filter(title="Fresh").exists()
