"""Rate limits on failed authentications (issue 16): per client address and per key prefix,
429 with `Retry-After` in each dialect's error body, checked before the token is looked up,
counted in the database so every app server shares them (paperclip.api.auth_failures)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent, AgentApiKey
from agents.runs import mint_run_token
from companies.models import new_secret
from paperclip.api.auth_failures import count_failure, forget_blocks
from paperclip.models import AuthFailureCount
from tests import factories
from tests.conftest import client_for

ATTACKER = "198.51.100.7"
WINDOW = 60


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.PAPERCLIP_AUTH_FAILURE_LIMIT = 3
    settings.PAPERCLIP_AUTH_FAILURE_PREFIX_LIMIT = 2
    settings.PAPERCLIP_AUTH_FAILURE_WINDOW_SECONDS = WINDOW
    settings.PAPERCLIP_TRUSTED_PROXIES = 0


@pytest.fixture
def key(agent):
    return factories.AgentApiKeyFactory(agent=agent)


def get(token: str, path: str = "/api/agents/me", address: str = ATTACKER, **extra):
    return client_for(token).get(path, REMOTE_ADDR=address, **extra)


def fail(times: int, address: str = ATTACKER, prefix: str = "pcp_", **extra) -> None:
    """`times` unknown keys (each its own prefix unless `prefix` names one), all refused."""
    for _ in range(times):
        token = prefix + new_secret("")[: 52 - len(prefix)]
        assert get(token, address=address, **extra).status_code == 401


def retry_after(response) -> int:
    seconds = int(response["Retry-After"])
    assert 0 < seconds <= WINDOW
    return seconds


# -- per client address ------------------------------------------------------------------------


@pytest.mark.django_db
def test_past_the_limit_an_address_gets_429_even_with_a_valid_key(key):
    fail(3)

    response = get(key.token)

    assert response.status_code == 429
    seconds = retry_after(response)
    assert response.json() == {
        "error": "Too many failed authentications; retry later",
        "code": "too_many_auth_failures",
        "details": {"retryAfter": seconds},
    }
    assert "WWW-Authenticate" not in response


@pytest.mark.django_db
def test_the_limit_is_not_reached_before_its_count(key):
    fail(2)

    assert get(key.token).status_code == 200


@pytest.mark.django_db
def test_v1_answers_the_429_in_its_own_envelope(key):
    fail(3)

    response = get(key.token, "/v1/whoami")

    assert response.status_code == 429
    seconds = retry_after(response)
    assert response.json() == {
        "error": {
            "code": "too_many_auth_failures",
            "message": "Too many failed authentications; retry later",
            "details": {"retryAfter": seconds},
            "requestId": response["X-Request-Id"],
        }
    }


@pytest.mark.django_db
def test_another_address_is_unaffected(key):
    fail(3)

    assert get(key.token, address="203.0.113.9").status_code == 200
    assert get("pcp_" + "0" * 48, address="203.0.113.9").status_code == 401


@pytest.mark.django_db
def test_a_blocked_address_is_refused_before_its_token_is_looked_up(key):
    fail(3)

    with CaptureQueriesContext(connection) as queries:
        assert get("pcp_" + "1" * 48).status_code == 429

    # Only the request's transaction (a savepoint in a test): no lookup, and nothing counted.
    assert [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]] == []
    assert AuthFailureCount.objects.get(key=f"address:{ATTACKER}").failures == 3


@pytest.mark.django_db
def test_every_kind_of_failed_credential_counts(agent, board_user):
    revoked_board = factories.BoardTokenFactory(user=board_user)
    revoked_board.revoked_at = revoked_board.created_at
    revoked_board.save()
    run = factories.HeartbeatRunFactory(agent=factories.AgentFactory(company=agent.company))
    run_token = mint_run_token(run)
    terminated_key = factories.AgentApiKeyFactory(agent=run.agent)
    Agent.objects.filter(pk=run.agent.pk).update(status=Agent.Status.TERMINATED)

    assert get(revoked_board.token).status_code == 401  # a revoked board token
    assert get(terminated_key.token).status_code == 401  # a terminated agent's key
    assert get(run_token[:-4] + "AAAA").status_code == 401  # a forged run token

    assert get(run_token).status_code == 429
    assert AuthFailureCount.objects.get(key=f"address:{ATTACKER}").failures == 3


# -- per key prefix ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_key_prefix_guessed_from_many_addresses_is_limited_across_them():
    fail(1, address="192.0.2.1", prefix="pcp_deadbeef")
    fail(1, address="192.0.2.2", prefix="pcp_deadbeef")

    refused = get("pcp_deadbeef" + "2" * 40, address="192.0.2.3")
    other_prefix = get("pcp_cafebabe" + "2" * 40, address="192.0.2.3")

    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_auth_failures"
    retry_after(refused)
    assert other_prefix.status_code == 401


@pytest.mark.django_db
def test_run_tokens_count_per_address_only_since_they_all_begin_alike(agent):
    run = factories.HeartbeatRunFactory(agent=agent)
    token = mint_run_token(run)
    forged = token[:-4] + "AAAA"

    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert get(forged, "/v1/whoami", address=address).status_code == 401

    assert get(token, "/v1/whoami", address="192.0.2.4").status_code == 200
    assert not AuthFailureCount.objects.filter(key__startswith="prefix:").exists()


# -- what is never counted, and turning it off -------------------------------------------------


@pytest.mark.django_db
def test_successes_are_never_counted(key):
    for _ in range(10):
        assert get(key.token).status_code == 200

    assert not AuthFailureCount.objects.exists()


@pytest.mark.django_db
def test_requests_without_a_token_are_not_counted(key):
    for _ in range(5):
        assert client_for("").get("/api/agents/me", REMOTE_ADDR=ATTACKER).status_code == 401

    assert get(key.token).status_code == 200


@pytest.mark.django_db
def test_limits_of_zero_turn_the_counting_off(settings, key):
    settings.PAPERCLIP_AUTH_FAILURE_LIMIT = 0
    settings.PAPERCLIP_AUTH_FAILURE_PREFIX_LIMIT = 0

    fail(10, prefix="pcp_deadbeef")

    assert get(key.token).status_code == 200
    assert not AuthFailureCount.objects.exists()


# -- the window --------------------------------------------------------------------------------


def end_the_window() -> None:
    """Time travel: every counter's window ended a second ago (as every process would see
    after the wait)."""
    AuthFailureCount.objects.update(window_ends=0)
    forget_blocks()


@pytest.mark.django_db
def test_the_window_frees_the_address_and_counting_starts_again(key):
    fail(3)
    assert get(key.token).status_code == 429

    end_the_window()

    assert get(key.token).status_code == 200
    fail(1)
    assert AuthFailureCount.objects.get(key=f"address:{ATTACKER}").failures == 1
    assert get(key.token).status_code == 200


@pytest.mark.django_db
def test_retry_after_counts_down_to_the_end_of_the_window(key):
    fail(3)
    AuthFailureCount.objects.update(window_ends=int(time.time()) + 7)
    forget_blocks()

    assert 6 <= int(get(key.token)["Retry-After"]) <= 7


# -- the client's address ----------------------------------------------------------------------


@pytest.mark.django_db
def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(key):
    for n in range(3):
        fail(1, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    assert get(key.token, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(settings, key):
    settings.PAPERCLIP_TRUSTED_PROXIES = 1
    proxy = "10.0.0.1"
    # The client wrote its own X-Forwarded-For; the proxy appended the address it really saw.
    fail(3, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.50, 203.0.113.7")

    blocked = get(key.token, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    spoofing = get(key.token, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.60, 203.0.113.7")
    other_client = get(key.token, address=proxy, HTTP_X_FORWARDED_FOR="192.0.2.50, 203.0.113.8")

    assert blocked.status_code == 429
    assert spoofing.status_code == 429
    assert other_client.status_code == 200
    assert AuthFailureCount.objects.filter(key="address:203.0.113.7").exists()


# -- several app servers -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_process_that_never_saw_the_failures_refuses_too(key):
    fail(3)

    forget_blocks()  # a fresh process: what it knows comes from the shared table

    assert get(key.token).status_code == 429


@pytest.mark.django_db
def test_the_failure_is_counted_though_the_request_is_rolled_back(key):
    fail(1)

    assert AuthFailureCount.objects.get(key=f"address:{ATTACKER}").failures == 1
    assert AgentApiKey.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_on_separate_connections_lose_no_count():
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)

    def worker():
        try:
            start.wait()
            for _ in range(per_thread):
                count_failure(["address:192.0.2.200"])
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert AuthFailureCount.objects.get(key="address:192.0.2.200").failures == threads * per_thread
