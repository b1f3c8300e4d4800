"""Two app servers on one database (DESIGN §7, §12): every rule that coordinates holds across them.

Two real granian processes, started as production runs them (`paperclip.wsgi`, DEBUG off), serve
the test database; threads lined up on a barrier send each race's requests half to one server and
half to the other, so only PostgreSQL can keep them apart:

- checkout: ten agents racing for an issue through both servers get one 200 and nine 409s;
- Idempotency-Key: one key sent to both servers at once makes one issue, and both answers name it;
- numbering: creates through both servers in one company are numbered 1..N, no gap, no duplicate;
- webhook delivery: events made through both servers, fanned out and delivered by two
  `manage.py db_worker` processes, reach each endpoint exactly once each.

PostgreSQL only: the servers are other processes and must see the test's committed rows.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from agents.delivery import new_webhook_secret
from agents.models import WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from issues.models import Event, Issue
from tests import factories
from tests.agents.receivers import Receiver, running_receiver
from tests.factories import live_run
from tests.issues.test_protocol_races import race
from tests.issues.test_worker_killed import Workers, wait_for
from tests.servers import SERVER_TESTS, Answer, AppServer, running, server_env
from tests.wire import wire

pytestmark = SERVER_TESTS

REPLAYED = "idempotent-replayed"


@pytest.fixture(scope="module")
def app_servers(django_db_setup, tmp_path_factory) -> Iterator[tuple[AppServer, AppServer]]:
    """Servers A and B, started once for this file (each test's rows are flushed after it; the
    servers keep nothing between requests but their key caches, and every test has new keys)."""
    logs = tmp_path_factory.mktemp("two-servers")
    app_name = f"two-servers-{uuid.uuid4().hex[:12]}"
    env = server_env(app_name)
    pair = (AppServer("A", logs / "a.log", env), AppServer("B", logs / "b.log", env))
    with running(pair, app_name):
        yield pair


@pytest.fixture
def servers(app_servers) -> Iterator[tuple[AppServer, AppServer]]:
    """A and B for one test; their log tails are printed after it (pytest shows them when the
    test failed)."""
    for server in app_servers:
        server.mark()
    yield app_servers
    for server in app_servers:
        tail = server.tail() or "(nothing logged during this test)"
        print(f"--- server {server.name} (port {server.port}), last log lines:\n{tail}")


def board_token(company) -> str:
    user = factories.MembershipFactory(company=company).user
    return factories.BoardTokenFactory(user=user).token


# -- checkout ------------------------------------------------------------------------------------

ISSUES = 20
RACERS = 10  # per issue: the first half through A, the rest through B


def test_ten_agents_racing_for_each_issue_through_two_servers_get_one_200_and_nine_409s(servers):
    company = factories.CompanyFactory(issue_prefix="RACE")
    issues = [factories.IssueFactory(company=company, status="todo") for _ in range(ISSUES)]
    # Each racer its own agent, key and live run; one key per racer, so no key row lines the
    # requests up (see test_protocol_races).
    racers = [
        [
            (agent, factories.AgentApiKeyFactory(agent=agent).token, live_run(agent))
            for agent in factories.AgentFactory.create_batch(RACERS, company=company)
        ]
        for _ in issues
    ]

    def attempt(i: int, barrier: threading.Barrier) -> list[Answer]:
        server = servers[0] if i < RACERS // 2 else servers[1]
        answers = []
        for issue, line_up in zip(issues, racers, strict=True):
            _, token, run = line_up[i]
            barrier.wait()  # the ten requests for this issue leave together
            answers.append(
                server.call(
                    "POST",
                    f"/api/issues/{wire(issue)}/checkout",
                    token,
                    {"expectedStatuses": ["todo"]},
                    headers={"X-Paperclip-Run-Id": wire(run)},
                )
            )
        return answers

    by_racer = race(RACERS, attempt)

    for n, (issue, line_up) in enumerate(zip(issues, racers, strict=True)):
        answers = [by_racer[i][n] for i in range(RACERS)]
        assert Counter(a.status for a in answers) == {200: 1, 409: RACERS - 1}, answers
        [winner] = [i for i, a in enumerate(answers) if a.status == 200]
        agent, _, run = line_up[winner]
        assert answers[winner].body["checkoutRunId"] == wire(run)
        conflict = {
            "error": "Issue checkout conflict",
            "code": "checkout_conflict",
            "details": {
                "issueId": wire(issue),
                "status": "in_progress",
                "assigneeAgentId": wire(agent),
                "checkoutRunId": wire(run),
                "holderRunIsLive": True,
            },
        }
        assert all(a.body == conflict for a in answers if a.status == 409), answers

        issue.refresh_from_db()
        assert (issue.status, issue.assignee_agent_id, issue.checkout_run_id) == (
            "in_progress",
            agent.pk,
            run.pk,
        )
        [row] = ActivityEvent.objects.filter(issue_id=issue.pk, action="issue.checked_out")
        assert (row.actor_id, row.run_id) == (agent.pk, run.pk)


# -- Idempotency-Key -----------------------------------------------------------------------------

KEYS = 10


def test_one_idempotency_key_sent_to_both_servers_at_once_makes_one_issue_and_both_name_it(
    servers,
):
    company = factories.CompanyFactory(issue_prefix="ONCE")
    token = board_token(company)
    url = f"/api/companies/{wire(company)}/issues"
    bodies = [json.dumps({"title": f"Exactly once {k}"}).encode() for k in range(KEYS)]

    def send(i: int, barrier: threading.Barrier) -> list[Answer]:
        answers = []
        for k, body in enumerate(bodies):
            barrier.wait()  # the same key, the same bytes, to A and to B at once
            answers.append(
                servers[i].call("POST", url, token, body, headers={"Idempotency-Key": f"k-{k}"})
            )
        return answers

    by_server = race(2, send)

    for k in range(KEYS):
        pair = [by_server[0][k], by_server[1][k]]
        # Within the request's transaction the second claim waits on the first's row until it
        # commits with its answer (paperclip/idempotency.py): a replay, never a second issue.
        assert [a.status for a in pair] == [201, 201], pair
        [first] = [a for a in pair if REPLAYED not in a.headers]
        [again] = [a for a in pair if REPLAYED in a.headers]
        assert again.headers[REPLAYED] == "true"
        assert again.body == first.body
        assert first.body["title"] == f"Exactly once {k}"

    stored = Issue.objects.filter(company=company)
    assert sorted(stored.values_list("title", flat=True)) == sorted(
        f"Exactly once {k}" for k in range(KEYS)
    )
    created = {by_server[0][k].body["id"] for k in range(KEYS)}
    assert created == {wire(pk) for pk in stored.values_list("pk", flat=True)}


# -- numbering -----------------------------------------------------------------------------------

CREATORS = 30  # half through A, half through B


def test_creates_through_both_servers_are_numbered_one_to_n_without_gaps_or_duplicates(servers):
    company = factories.CompanyFactory(issue_prefix="NUM")
    # One token per creator: a token's first use is stamped after its request commits, but a
    # shared one would still be one credential where this race wants many callers.
    tokens = [board_token(company) for _ in range(CREATORS)]
    url = f"/api/companies/{wire(company)}/issues"

    def create(i: int, barrier: threading.Barrier) -> Answer:
        barrier.wait()
        return servers[i % 2].call("POST", url, tokens[i], {"title": f"Numbered {i}"})

    answers = race(CREATORS, create)

    assert [a.status for a in answers] == [201] * CREATORS, answers
    expected = [f"NUM-{n}" for n in range(1, CREATORS + 1)]
    assert sorted((a.body["identifier"] for a in answers), key=lambda i: int(i[4:])) == expected
    stored = Issue.objects.filter(company=company)
    assert sorted(stored.values_list("number", flat=True)) == list(range(1, CREATORS + 1))
    company.refresh_from_db()
    assert company.issue_counter == CREATORS


# -- webhook delivery ----------------------------------------------------------------------------

EVENTS = 20  # issues created, half through A, half through B: one `issue.created` each


@pytest.fixture
def workers(tmp_path, settings) -> Iterator[Workers]:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    pool = Workers(log_dir=tmp_path)
    try:
        yield pool
    finally:
        pool.close()
        for worker_id in ("worker-0", "worker-1"):
            if (tmp_path / f"{worker_id}.log").exists():
                tail = pool.log(worker_id).splitlines()[-40:]
                print(f"--- {worker_id}, last log lines:\n" + "\n".join(tail))


def received(receiver: Receiver, hook: WebhookEndpoint) -> list[str]:
    """The `webhook-id` of every request, each checked against the endpoint's secret."""
    ids = []
    for request in receiver.requests:
        event = Webhook(hook.secret).verify(request.body, request.headers)
        assert event["id"] == request.headers["webhook-id"]
        ids.append(request.headers["webhook-id"])
    return ids


def test_events_made_through_both_servers_reach_each_endpoint_exactly_once(servers, workers):
    company = factories.CompanyFactory(issue_prefix="HOOK")
    tokens = [board_token(company) for _ in range(EVENTS)]
    url = f"/api/companies/{wire(company)}/issues"
    with running_receiver() as first, running_receiver() as second:
        hooks = [
            WebhookEndpoint.objects.create(
                company=company, url=receiver.url, events=["*"], secret=new_webhook_secret()
            )
            for receiver in (first, second)
        ]
        for n in range(2):
            workers.start(f"worker-{n}")
        wait_for(lambda: len(workers.sessions()) >= 2, "both workers to connect")

        def create(i: int, barrier: threading.Barrier) -> Answer:
            barrier.wait()
            return servers[i % 2].call("POST", url, tokens[i], {"title": f"Hooked {i}"})

        answers = race(EVENTS, create)
        assert [a.status for a in answers] == [201] * EVENTS, answers

        def settled() -> bool:
            # Every event fanned out, every attempt made, and no task left to run: nothing can
            # be sent after this, so what the receivers hold is all they will ever get.
            return (
                not Event.objects.undispatched().exists()
                and WebhookDelivery.objects.filter(status="succeeded").count() == 2 * EVENTS
                and not DBTaskResult.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists()
            )

        wait_for(settled, "every delivery to be made")

    assert not DBTaskResult.objects.failed().exists(), list(
        DBTaskResult.objects.failed().values_list("traceback", flat=True)
    )
    events = set(Event.objects.filter(company=company).values_list("pk", flat=True))
    assert len(events) == EVENTS
    assert set(Event.objects.values_list("type", flat=True)) == {"issue.created"}
    for receiver, hook in zip((first, second), hooks, strict=True):
        ids = received(receiver, hook)
        assert Counter(ids) == Counter(events), "a duplicate or a missing webhook-id"
    attempts = WebhookDelivery.objects.values_list("event_id", "endpoint_id", "attempt", "status")
    assert sorted(attempts) == sorted(
        (event, hook.pk, 1, "succeeded") for event in events for hook in hooks
    )
