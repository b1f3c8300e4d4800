"""`Idempotency-Key` on every POST of both dialects (DESIGN §9): the same key and request replay
the first answer once made; another request with the key is 422; a request refused before it ran
(400) leaves no key; any other answer, 4xx included, is replayed; keys are per credential owner
and live 24 hours. On PostgreSQL: two concurrent requests with one key make one object."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import IdempotencyKey
from issues.models import Attachment, Comment, Issue, Label, Status
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

pytestmark = pytest.mark.django_db

REPLAYED = "Idempotent-Replayed"


def api_issues_url(company) -> str:
    return f"/api/companies/{company.pk}/issues"


def v1_tasks_url(company) -> str:
    return f"/v1/companies/{company.pk}/issues"


def api_comments_url(issue_pk: str) -> str:
    return f"/api/issues/{issue_pk}/comments"


def v1_comments_url(issue) -> str:
    return f"/v1/companies/{issue.company_id}/issues/{issue.pk}/comments"


def post(client, url: str, body: dict, key: str | None = "key-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(url, body, format="json", **headers)


def without_request_id(body: dict) -> dict:
    """A `/v1` success body less `meta.requestId`, which names each request (the replay too)."""
    meta = {k: v for k, v in body.get("meta", {}).items() if k != "requestId"}
    return {**body, "meta": meta}


# -- same key, same request: one object, the first answer again ------------------------------


def test_api_issue_create_is_replayed_with_the_same_status_and_body(board, company):
    first = post(board, api_issues_url(company), {"title": "Once"})
    again = post(board, api_issues_url(company), {"title": "Once"})

    assert first.status_code == 201, first.json()
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["id"] == wire(Issue.objects.get())  # still a UUID on /api
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert Issue.objects.count() == 1


def test_v1_task_create_is_replayed_in_its_envelope(board, company):
    first = post(board, v1_tasks_url(company), {"title": "Once"})
    again = post(board, v1_tasks_url(company), {"title": "Once"})

    assert first.status_code == 201, first.json()
    assert again.status_code == 201
    assert without_request_id(again.json()) == without_request_id(first.json())
    assert again.json()["data"]["id"] == Issue.objects.get().pk  # stored form on /v1
    assert again.json()["meta"]["requestId"] == again.headers["X-Request-Id"]
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"
    assert Issue.objects.count() == 1


@pytest.mark.parametrize("dialect", ["api", "v1"])
def test_a_comment_is_posted_once(board, company, dialect):
    issue = factories.IssueFactory(company=company, status=Status.TODO)
    url, body = (
        (api_comments_url(issue.pk), {"body": "Once"})
        if dialect == "api"
        else (v1_comments_url(issue), {"text": "Once"})
    )

    first = post(board, url, body)
    again = post(board, url, body)

    assert first.status_code == 201, first.json()
    assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
    assert without_request_id(again.json()) == without_request_id(first.json())
    assert Comment.objects.filter(issue=issue).count() == 1


def test_without_a_key_each_post_runs(board, company):
    post(board, api_issues_url(company), {"title": "A"}, key=None)
    second = post(board, api_issues_url(company), {"title": "A"}, key=None)

    assert REPLAYED not in second.headers
    assert Issue.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


# -- same key, another request: 422 in each dialect's shape ----------------------------------


def test_api_same_key_with_another_body_is_422_mismatch(board, company):
    post(board, api_issues_url(company), {"title": "First"})

    response = post(board, api_issues_url(company), {"title": "Second"})

    assert response.status_code == 422
    assert response.json() == {
        "error": "This Idempotency-Key was used with another request",
        "code": "idempotency_key_mismatch",
    }
    assert list(Issue.objects.values_list("title", flat=True)) == ["First"]


def test_v1_same_key_with_another_body_is_422_mismatch(board, company):
    post(board, v1_tasks_url(company), {"title": "First"})

    response = post(board, v1_tasks_url(company), {"title": "Second"})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "idempotency_key_mismatch",
            "message": "This Idempotency-Key was used with another request",
            "details": None,
            "requestId": response.headers["X-Request-Id"],
        }
    }
    assert list(Issue.objects.values_list("title", flat=True)) == ["First"]


def test_same_key_on_another_path_is_422_mismatch(board, company):
    issue = factories.IssueFactory(company=company)
    post(board, api_comments_url(issue.pk), {"body": "Hi"})

    response = post(board, api_issues_url(company), {"body": "Hi"})

    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_mismatch")


# -- what is kept and what is not -------------------------------------------------------------


@pytest.mark.parametrize("url_of", [api_issues_url, v1_tasks_url])
def test_a_validation_error_is_not_kept_so_the_corrected_retry_runs(board, company, url_of):
    refused = post(board, url_of(company), {"title": ""})
    retried = post(board, url_of(company), {"title": "Fixed"})

    assert refused.status_code == 400
    assert REPLAYED not in refused.headers
    assert retried.status_code == 201, retried.json()
    assert REPLAYED not in retried.headers
    assert list(Issue.objects.values_list("title", flat=True)) == ["Fixed"]


def test_a_404_is_replayed(board, company):
    missing = "iss_01jzzzzzzzzzzzzzzzzzzzzzzz"

    first = post(board, api_comments_url(missing), {"body": "Hi"})
    again = post(board, api_comments_url(missing), {"body": "Hi"})

    assert first.status_code == 404
    assert (again.status_code, again.headers[REPLAYED]) == (404, "true")
    assert again.json() == first.json() == {"error": "Not found", "code": "not_found"}


def test_a_409_is_replayed_even_once_the_request_would_pass(company):
    agent = factories.AgentFactory(company=company)
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)
    issue = factories.IssueFactory(company=company, status=Status.BACKLOG)
    url, body = f"/api/issues/{issue.pk}/checkout", {"expectedStatuses": ["todo"]}

    first = post(client, url, body)
    Issue.objects.filter(pk=issue.pk).update(status=Status.TODO)
    again = post(client, url, body)

    assert first.status_code == 409, first.json()
    assert (again.status_code, again.headers[REPLAYED]) == (409, "true")
    assert again.json() == first.json()
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == (Status.TODO, None)  # it did not run again


def test_a_replayed_refusal_is_stored_with_its_key(board, company):
    first = post(board, api_comments_url("iss_01jzzzzzzzzzzzzzzzzzzzzzzz"), {"body": "Hi"})

    assert first.status_code == 404
    row = IdempotencyKey.objects.get()
    assert (row.state, row.response_status) == ("done", 404)


# -- multipart uploads and bulk (outside the request transaction) ------------------------------


def upload(client, issue, data: bytes, key: str = "upload-1"):
    file = SimpleUploadedFile("build.txt", data, content_type="text/plain")
    url = f"/api/companies/{issue.company_id}/issues/{issue.pk}/attachments"
    return client.post(url, {"file": file}, format="multipart", HTTP_IDEMPOTENCY_KEY=key)


def test_an_upload_is_replayed_and_another_file_is_a_mismatch(board, company):
    issue = factories.IssueFactory(company=company)

    first = upload(board, issue, b"build log\n")
    again = upload(board, issue, b"build log\n")
    other = upload(board, issue, b"another log\n")

    assert first.status_code == 201, first.json()
    assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
    assert again.json() == first.json()
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_mismatch")
    assert Attachment.objects.filter(issue=issue).count() == 1


def test_bulk_runs_once_per_key_and_a_refused_body_leaves_no_key(board, company):
    # Bulk is outside ATOMIC_REQUESTS (each task its own transaction): the key is claimed in
    # autocommit and its answer stored when the view ends.
    task = factories.IssueFactory(company=company, status=Status.BACKLOG)
    url = f"/v1/companies/{company.pk}/issues/bulk"
    body = {"ids": [task.pk], "op": "label", "args": {"labels": ["urgent"]}}

    refused = post(board, url, {"ids": [], "op": "label"}, key="bulk")
    first = post(board, url, body, key="bulk")
    again = post(board, url, body, key="bulk")

    assert refused.status_code == 400
    assert first.status_code == 200, first.json()
    assert (again.status_code, again.headers[REPLAYED]) == (200, "true")
    assert without_request_id(again.json()) == without_request_id(first.json())
    assert again.json()["meta"]["succeeded"] == 1
    assert Label.objects.filter(company=company, name="urgent").count() == 1
    assert IdempotencyKey.objects.get().state == "done"


def test_bulk_with_a_running_key_is_409_in_use(board, company):
    url = f"/v1/companies/{company.pk}/issues/bulk"
    body = {"ids": ["x"], "op": "label", "args": {"labels": ["urgent"]}}
    first = post(board, url, body, key="bulk")
    IdempotencyKey.objects.update(state="running")  # as while the first is still running

    response = post(board, url, body, key="bulk")

    assert first.status_code == 200, first.json()
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"


# -- whose key, and for how long --------------------------------------------------------------


def test_the_same_key_from_two_credentials_makes_two_objects(board, agent_client, company):
    by_board = post(board, api_issues_url(company), {"title": "Same"})
    by_agent = post(agent_client, api_issues_url(company), {"title": "Same"})

    assert (by_board.status_code, by_agent.status_code) == (201, 201), by_agent.json()
    assert REPLAYED not in by_agent.headers
    assert by_board.json()["id"] != by_agent.json()["id"]
    assert Issue.objects.count() == 2


def test_an_expired_key_runs_again(board, company):
    first = post(board, api_issues_url(company), {"title": "Daily"})
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    again = post(board, api_issues_url(company), {"title": "Daily"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert REPLAYED not in again.headers
    assert Issue.objects.count() == 2
    assert IdempotencyKey.objects.get().expires_at > timezone.now() + timedelta(hours=23)


def test_a_key_is_kept_for_24_hours(board, company):
    before = timezone.now()
    post(board, api_issues_url(company), {"title": "Daily"})

    row = IdempotencyKey.objects.get()
    assert before + timedelta(hours=24) <= row.expires_at <= timezone.now() + timedelta(hours=24)


@pytest.mark.parametrize(
    ("url_of", "error_of"),
    [
        (api_issues_url, lambda body: (body["code"], body["details"])),
        (v1_tasks_url, lambda body: (body["error"]["code"], body["error"]["details"])),
    ],
)
@pytest.mark.parametrize("key", ["k" * 256, ""])
def test_a_key_too_long_or_empty_is_400_naming_the_header(board, company, url_of, error_of, key):
    response = post(board, url_of(company), {"title": "x"}, key=key)

    assert response.status_code == 400
    assert error_of(response.json()) == (
        "validation_error",
        {"Idempotency-Key": ["Must be 1 to 255 characters."]},
    )
    assert not Issue.objects.exists()


def test_a_key_of_255_characters_is_accepted(board, company):
    response = post(board, api_issues_url(company), {"title": "x"}, key="k" * 255)

    assert response.status_code == 201, response.json()


def test_the_replayed_schema_declares_the_header_on_every_post(settings):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    posts = [(path, item["post"]) for path, item in schema["paths"].items() if "post" in item]

    assert posts
    for path, operation in posts:
        names = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        assert ("header", "Idempotency-Key") in names, path


# -- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_object(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    company = factories.CompanyFactory()
    user = factories.MembershipFactory(company=company).user
    token = factories.BoardTokenFactory(user=user).token
    n = 4
    barrier = threading.Barrier(n, timeout=30)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            client = client_for(token)
            barrier.wait()
            results[i] = post(client, api_issues_url(company), {"title": "Raced"}, key="race")
        except BaseException as exc:  # surfaced below
            barrier.abort()
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    if errors:
        raise errors[0]

    assert Issue.objects.count() == 1
    created = [r for r in results if r.status_code == 201 and REPLAYED not in r.headers]
    assert len(created) == 1
    for response in results:
        if response is created[0]:
            continue
        if response.status_code == 409:
            assert response.json()["code"] == "idempotency_key_in_use"
        else:
            assert (response.status_code, response.headers[REPLAYED]) == (201, "true")
            assert response.json() == created[0].json()
