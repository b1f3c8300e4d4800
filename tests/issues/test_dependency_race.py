"""Two concurrent edits that would close a dependency cycle (a waits on b, b waits on a) on
PostgreSQL: they queue on the company's row, so one wins and the other gets 422."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.issues.test_documents_race import race


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_closing_a_cycle_have_one_winner(board_user, company):
    a, b = (factories.IssueFactory(company=company) for _ in range(2))
    clients = []
    for _ in range(2):
        client = APIClient()
        token = factories.BoardTokenFactory(user=board_user).token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        clients.append(client)
    edits = [(a, b), (b, a)]

    results = race(
        clients,
        lambda client, n: client.patch(
            f"/api/issues/{edits[n][0].pk}", {"dependencyIds": [edits[n][1].pk]}, format="json"
        ),
    )

    assert sorted(status for _, status, _ in results) == [200, 422]
    [(_, _, refused)] = [r for r in results if r[1] == 422]
    assert refused["code"] == "dependency_cycle"
    waits = [list(issue.dependencies.values_list("pk", flat=True)) for issue in (a, b)]
    assert sorted(len(w) for w in waits) == [0, 1]
