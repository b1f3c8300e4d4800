"""Concurrent PUTs of one document on PostgreSQL: one writer wins, the others get 409, and
nothing is lost (DESIGN §6, optimistic concurrency on the base revision)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from companies.models import ActivityEvent
from issues.models import Document, DocumentRevision
from tests import factories
from tests.wire import wire

WRITERS = 8


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def clients(board_user) -> list[APIClient]:
    # One token per thread: a shared token's first use stamps its row, and that row lock would
    # line the requests up one after another before they ever reach the document.
    result = []
    for _ in range(WRITERS):
        client = APIClient()
        token = factories.BoardTokenFactory(user=board_user).token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        result.append(client)
    return result


def race(clients: list[APIClient], request: Callable[[APIClient, int], object]) -> list:
    """Run `request(client, n)` in one thread per client, all released at once by a barrier.

    Each thread works on its own database connection (closed at the end). Answers
    `[(n, status, json), ...]`; any exception in a thread fails the test.
    """
    barrier = threading.Barrier(len(clients), timeout=30)
    results: list[tuple[int, int, dict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            barrier.wait()
            response = request(clients[n], n)
            with lock:
                results.append((n, response.status_code, response.json()))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_on_the_same_base_have_one_winner_and_lose_nothing(
    board, issue, clients
):
    created = board.put(
        f"/api/issues/{issue.pk}/documents/plan", {"body": "v1"}, format="json"
    ).json()
    base = created["latestRevisionId"]

    results = race(
        clients,
        lambda client, n: client.put(
            f"/api/issues/{issue.pk}/documents/plan",
            {"body": f"written by {n}", "changeSummary": f"writer {n}", "baseRevisionId": base},
            format="json",
        ),
    )

    winners = [(n, body) for n, status, body in results if status == 200]
    losers = [body for _, status, body in results if status == 409]
    assert len(winners) == 1, results
    assert len(losers) == WRITERS - 1, results
    [(winner, won)] = winners
    assert (won["body"], won["revisionNumber"]) == (f"written by {winner}", 2)
    for body in losers:
        assert (body["error"], body["code"]) == (
            "Document was updated by someone else",
            "document_stale_base",
        )
        assert body["details"]["currentRevisionId"] == won["latestRevisionId"]

    document = Document.objects.get()
    assert (document.body, wire(document.latest_revision_id)) == (
        f"written by {winner}",
        won["latestRevisionId"],
    )
    revisions = list(document.revisions.order_by("number").values_list("number", "body", "id"))
    assert [(n, text, wire(pk)) for n, text, pk in revisions] == [
        (1, "v1", base),
        (2, f"written by {winner}", won["latestRevisionId"]),
    ]
    actions = ActivityEvent.objects.filter(issue_id=issue.pk).values_list("action", flat=True)
    assert sorted(actions) == ["document.created", "document.revised"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_writes_create_the_document_exactly_once(issue, clients):
    results = race(
        clients,
        lambda client, n: client.put(
            f"/api/issues/{issue.pk}/documents/design", {"body": f"draft {n}"}, format="json"
        ),
    )

    created = [(n, body) for n, status, body in results if status == 201]
    refused = [body for _, status, body in results if status == 409]
    assert len(created) == 1, results
    assert len(refused) == WRITERS - 1, results
    [(author, doc)] = created
    for body in refused:
        assert (body["error"], body["code"]) == (
            "Document update requires baseRevisionId",
            "document_base_required",
        )
        assert body["details"] == {"currentRevisionId": doc["latestRevisionId"]}

    document = Document.objects.get()
    assert (document.key, document.body) == ("design", f"draft {author}")
    assert DocumentRevision.objects.count() == 1
    actions = ActivityEvent.objects.filter(issue_id=issue.pk).values_list("action", flat=True)
    assert list(actions) == ["document.created"]
