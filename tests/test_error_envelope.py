"""`/api` never answers a 500 page or an HTML error: every failure is the JSON envelope.

- A Host header not in ALLOWED_HOSTS → 400 `invalid_host` (even with DEBUG on).
- An unexpected exception, in the view or in a middleware → 500 `internal_error` naming a
  request id, logged with its traceback under that id; what the request wrote is rolled back.
- The database down or restarting (OperationalError / InterfaceError) wherever the request
  meets it (the transaction's begin, authentication, the view) → 503 `database_unavailable`
  with `Retry-After`. Simulated with `connection.execute_wrapper`, on SQLite and PostgreSQL.
- The admin keeps Django's own pages.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import InterfaceError, OperationalError, connection
from rest_framework.views import APIView

from companies.models import ActivityEvent
from issues.api.issues import IssueSerializer
from issues.models import Issue

pytestmark = pytest.mark.django_db

DATABASE_UNAVAILABLE = {"error": "Database unavailable", "code": "database_unavailable"}


def internal_error(request_id: str) -> dict:
    return {
        "error": "Internal server error",
        "code": "internal_error",
        "details": {"requestId": request_id},
    }


@pytest.fixture
def boom():
    return RuntimeError("boom")


@pytest.fixture
def no_raise(board):
    """The board's client, answering what the server answers instead of re-raising the error
    (Django's test client re-raises what it would report to an error tracker)."""
    board.raise_request_exception = False
    return board


def failing(statement: str, error: type[Exception] = OperationalError):
    """An execute wrapper: statements starting with `statement` fail as if the server were gone."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(statement):
            raise error("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    return wrapper


# -- Host ------------------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_disallowed_host_is_400_json_on_api(board, settings, debug):
    settings.DEBUG = debug

    response = board.get("/api/companies", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "Invalid Host header", "code": "invalid_host"}


def test_disallowed_host_keeps_djangos_page_on_the_admin(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# -- unexpected exceptions -------------------------------------------------------------------


def test_unexpected_exception_in_a_view_is_500_json_logged_with_its_request_id(
    no_raise, company, monkeypatch, caplog, boom
):
    def explode(self, request):
        raise boom

    monkeypatch.setattr(APIView, "check_permissions", explode)

    with caplog.at_level(logging.ERROR, logger="paperclip.api"):
        response = no_raise.get(f"/api/companies/{company.pk}")

    assert response.status_code == 500
    request_id = response.json()["details"]["requestId"]
    assert response.json() == internal_error(request_id)
    assert response["X-Request-Id"] == request_id
    [record] = [r for r in caplog.records if r.name == "paperclip.api"]
    assert request_id in record.getMessage()
    assert record.exc_info[1] is boom


def test_unexpected_exception_names_the_proxys_request_id(no_raise, company, monkeypatch, boom):
    def explode(self, request):
        raise boom

    monkeypatch.setattr(APIView, "check_permissions", explode)

    response = no_raise.get(f"/api/companies/{company.pk}", HTTP_X_REQUEST_ID="lb-7f3a.42")

    assert response.status_code == 500
    assert response.json() == internal_error("lb-7f3a.42")


def test_unexpected_exception_after_a_write_rolls_the_write_back(
    no_raise, company, monkeypatch, boom
):
    def explode(self, instance):
        raise boom

    monkeypatch.setattr(IssueSerializer, "to_representation", explode)

    response = no_raise.post(
        f"/api/companies/{company.pk}/issues", {"title": "Ship"}, format="json"
    )

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert not Issue.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_the_test_client_still_sees_the_exception(board, company, monkeypatch, boom):
    """The 500 is reported like Django's own (got_request_exception), so error trackers and
    tests that do not expect an error still see it."""

    def explode(self, request):
        raise boom

    monkeypatch.setattr(APIView, "check_permissions", explode)

    with pytest.raises(RuntimeError, match="boom"):
        board.get(f"/api/companies/{company.pk}")


def test_unexpected_exception_in_a_middleware_is_500_json(no_raise, monkeypatch, caplog, boom):
    def explode(self, request):
        raise boom

    monkeypatch.setattr(SessionMiddleware, "process_request", explode)

    with caplog.at_level(logging.ERROR, logger="paperclip.api"):
        response = no_raise.get("/api/companies")

    assert response.status_code == 500
    request_id = response.json()["details"]["requestId"]
    assert response.json() == internal_error(request_id)
    [record] = [r for r in caplog.records if r.name == "paperclip.api"]
    assert request_id in record.getMessage()
    assert record.exc_info[1] is boom


def test_unexpected_exception_keeps_djangos_page_on_the_admin(client, monkeypatch, boom):
    client.raise_request_exception = False

    def explode(self, request):
        raise boom

    monkeypatch.setattr(SessionMiddleware, "process_request", explode)

    response = client.get("/admin/login/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# -- the database is down --------------------------------------------------------------------


def assert_database_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.json() == DATABASE_UNAVAILABLE
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_database_failing_at_the_requests_transaction_begin_is_503(no_raise, company, error):
    # ATOMIC_REQUESTS opens the request's transaction (here a savepoint) before the view.
    with connection.execute_wrapper(failing("SAVEPOINT", error)):
        response = no_raise.post(
            f"/api/companies/{company.pk}/issues", {"title": "Ship"}, format="json"
        )

    assert_database_unavailable(response)
    assert not Issue.objects.exists()


def test_database_failing_during_authentication_is_503(no_raise, company, caplog):
    # The token lookup is the request's first query.
    with (
        caplog.at_level(logging.ERROR, logger="paperclip.api"),
        connection.execute_wrapper(failing("SELECT")),
    ):
        response = no_raise.get(f"/api/companies/{company.pk}/issues")

    assert_database_unavailable(response)
    [record] = [r for r in caplog.records if r.name == "paperclip.api"]
    assert record.getMessage().startswith("Database unavailable on GET /api/companies/")


def test_database_failing_in_the_view_is_503_and_writes_nothing(no_raise, company):
    with connection.execute_wrapper(failing("INSERT")):
        response = no_raise.post(
            f"/api/companies/{company.pk}/issues", {"title": "Ship"}, format="json"
        )

    assert_database_unavailable(response)
    assert not Issue.objects.exists()
    assert not ActivityEvent.objects.exists()


def test_database_failing_in_a_middleware_is_503(no_raise, monkeypatch):
    def lost(self, request):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(SessionMiddleware, "process_request", lost)

    response = no_raise.get("/api/companies")

    assert_database_unavailable(response)


def test_health_says_retry_after_when_the_database_is_down(anon):
    with connection.execute_wrapper(failing("SELECT")):
        response = anon.get("/api/health")

    assert response.status_code == 503
    assert response.json() == {
        "error": "Database unavailable",
        "code": "service_unavailable",
        "details": {"database": "down"},
    }
    assert response["Retry-After"] == "5"
