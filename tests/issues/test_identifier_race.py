"""Concurrent creates in one company get gap-free, duplicate-free identifiers (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from companies.models import ActivityEvent
from issues.models import Issue
from tests import factories

CREATORS = 20


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_identifiers_one_to_twenty_without_gaps_or_duplicates(
    company, board_user
):
    # One token per thread: a shared token's first use stamps its row, and that row lock would
    # line the requests up one after another before they ever reach the issue counter.
    tokens = [factories.BoardTokenFactory(user=board_user).token for _ in range(CREATORS)]
    barrier = threading.Barrier(CREATORS, timeout=30)
    results: list[tuple[int, dict]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[n]}")
            barrier.wait()  # every thread posts at the same moment
            response = client.post(
                f"/api/companies/{company.pk}/issues", {"title": f"Racer {n}"}, format="json"
            )
            with lock:
                results.append((response.status_code, response.json()))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=create, args=(n,)) for n in range(CREATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert [status for status, _ in results] == [201] * CREATORS, results
    expected = [f"ACM-{n}" for n in range(1, CREATORS + 1)]
    assert sorted((body["identifier"] for _, body in results), key=lambda i: int(i[4:])) == expected
    assert sorted(body["number"] for _, body in results) == list(range(1, CREATORS + 1))

    company.refresh_from_db()
    assert company.issue_counter == CREATORS
    stored = Issue.objects.filter(company=company)
    assert sorted(stored.values_list("number", flat=True)) == list(range(1, CREATORS + 1))
    assert sorted(stored.values_list("identifier", flat=True), key=lambda i: int(i[4:])) == expected
    assert ActivityEvent.objects.filter(company=company, action="issue.created").count() == CREATORS
