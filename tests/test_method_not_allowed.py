"""A method a route does not serve answers 405 JSON (`method_not_allowed`), never a 500: PUT,
PATCH and DELETE on collection URLs included."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from issues.models import Document
from tests import factories

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


def _drf_routes(patterns, prefix: str = ""):
    """`(regex, served methods)` of every `/api` route made by a viewset's `as_view({...})`."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _drf_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern) and getattr(pattern.callback, "actions", None):
            yield prefix + str(pattern.pattern), set(pattern.callback.actions)


def _sample_url(regex: str) -> str:
    """A concrete URL for a route regex (ids need not exist: the method is refused first)."""
    path = regex.replace("^", "").replace("/?$", "").replace("$", "")
    return "/" + re.sub(r"\(\?P<\w+>[^)]*\)", "x0", path)


UNSERVED = sorted(
    (url, method)
    for regex, served in _drf_routes(get_resolver().url_patterns)
    if regex.startswith("api/")
    for url in [_sample_url(regex)]
    for method in METHODS
    if method not in served
)


def test_the_route_walk_found_the_collection_routes():
    urls = {url for url, _ in UNSERVED}
    assert {"/api/issues/x0/documents", "/api/companies/x0/issues", "/api/companies"} <= urls


@pytest.mark.parametrize(("url", "method"), UNSERVED)
def test_an_unserved_method_is_405_json(board, url, method):
    response = getattr(board, method)(url, {}, format="json")

    assert response.status_code == 405, (url, method, response.content)
    assert response.json() == {
        "error": f'Method "{method.upper()}" not allowed.',
        "code": "method_not_allowed",
    }


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_writing_to_the_documents_list_is_405_and_changes_nothing(board, company, method):
    issue = factories.IssueFactory(company=company)

    response = getattr(board, method)(
        f"/api/issues/{issue.pk}/documents", {"body": "# Plan"}, format="json"
    )

    assert response.status_code == 405, response.content
    assert response.json() == {
        "error": f'Method "{method.upper()}" not allowed.',
        "code": "method_not_allowed",
    }
    assert not Document.objects.filter(issue=issue).exists()


def test_put_with_a_key_still_creates_the_document(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.put(
        f"/api/issues/{issue.pk}/documents/plan", {"body": "# Plan"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Document.objects.get(issue=issue).key == "plan"
