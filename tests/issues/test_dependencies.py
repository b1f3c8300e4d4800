"""Dependencies (`dependencyIds`): an issue waits on others of its company, never on itself,
directly or through a chain (422 `dependency_cycle`, and nothing changes)."""

from __future__ import annotations

import pytest

from companies.models import ActivityEvent
from tests import factories
from tests.wire import wire

pytestmark = pytest.mark.django_db


def depend(board, issue, *on):
    return board.patch(
        f"/api/issues/{issue.pk}", {"dependencyIds": [i.pk for i in on]}, format="json"
    )


@pytest.fixture
def abc(company):
    return [factories.IssueFactory(company=company) for _ in range(3)]


def test_a_dependency_back_on_its_dependent_is_422_dependency_cycle(board, abc):
    a, b, _ = abc
    assert depend(board, a, b).status_code == 200
    logged = ActivityEvent.objects.count()

    response = depend(board, b, a)

    assert response.status_code == 422
    assert response.json() == {
        "error": "Dependencies would form a cycle",
        "code": "dependency_cycle",
        "details": {"issueId": wire(b), "dependencyIds": [wire(a)]},
    }
    assert list(b.dependencies.all()) == []
    assert ActivityEvent.objects.count() == logged


def test_a_cycle_through_a_chain_is_refused_too(board, abc):
    a, b, c = abc
    assert depend(board, a, b).status_code == 200
    assert depend(board, b, c).status_code == 200

    response = depend(board, c, a)

    assert response.status_code == 422
    assert response.json()["code"] == "dependency_cycle"
    assert list(c.dependencies.all()) == []


def test_a_diamond_is_not_a_cycle(board, abc):
    a, b, c = abc
    assert depend(board, b, c).status_code == 200

    response = depend(board, a, b, c)

    assert response.status_code == 200, response.json()
    assert sorted(response.json()["dependencyIds"]) == sorted([wire(b), wire(c)])
