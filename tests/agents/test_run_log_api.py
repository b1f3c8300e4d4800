"""A run's output over HTTP (issue 13): `GET /api/heartbeat-runs/{id}/log` answers text.

The whole log from storage once a process run's command has ended; the end of it kept on the run
(`logTail`) while it still runs; 404 while there is none. Anyone who may read the run may read
its log: the board and every agent of its company. Another company's run is a 404, exactly like
a missing one. The run object says `exitCode` everywhere and `logTail` when read by id.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from agents.runs import mint_run_token
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

# Logs go to a fresh filesystem storage (`media`, tests/agents/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

TEXT = "text/plain; charset=utf-8"
# Longer than the tail a run keeps, with a character UTF-8 writes in two bytes.
WHOLE_LOG = "".join(f"step {n}: café\n" for n in range(1000)).encode()
NOT_FOUND = {"error": "Not found", "code": "not_found"}
NO_LOG = {"error": "Run has no log", "code": "not_found"}


@pytest.fixture
def process_agent(company) -> Agent:
    return factories.AgentFactory(
        company=company,
        name="Runner",
        adapter_type=Agent.Adapter.PROCESS,
        adapter_config={"command": "true"},
    )


@pytest.fixture
def peer_client(company):
    """Another agent of the same company."""
    peer = factories.AgentFactory(company=company, name="Peer")
    return client_for(factories.AgentApiKeyFactory(agent=peer).token)


def finished_run(agent: Agent, log: bytes = WHOLE_LOG) -> HeartbeatRun:
    """A run whose command exited 0, its output saved as `agents.services.run_exited` does."""
    run = factories.HeartbeatRunFactory(
        agent=agent,
        status=HeartbeatRun.Status.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        lease_expires_at=None,
        exit_code=0,
        log_tail=log[-4096:].decode(errors="replace"),
    )
    run.log_file.save(f"{run.pk}.log", ContentFile(log), save=True)
    return run


def running_run(agent: Agent, tail: str = "") -> HeartbeatRun:
    return factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now(), log_tail=tail
    )


def read_log(client, run_id: str):
    return client.get(f"/api/heartbeat-runs/{run_id}/log")


def text_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_finished_runs_whole_log_comes_from_storage_as_utf8_text(board, process_agent):
    run = finished_run(process_agent)

    response = read_log(board, run.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert text_of(response) == WHOLE_LOG  # all of it, not the 4 KB tail
    # The command printed whatever it liked: a browser must not sniff or run it.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    # Named by the id /api writes, never the stored one.
    assert f'filename="run-{wire(run)}.log"' in response["Content-Disposition"]


def test_a_running_run_without_a_file_yet_answers_its_tail(board, process_agent):
    run = running_run(process_agent, tail="cloning the repository\ncompiling\n")

    response = read_log(board, run.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"cloning the repository\ncompiling\n"


def test_a_queued_run_has_no_log_yet_404(board, process_agent):
    run = factories.HeartbeatRunFactory(agent=process_agent, lease_expires_at=None)

    response = read_log(board, run.pk)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NO_LOG


def test_a_running_run_that_printed_nothing_yet_has_no_log_404(board, agent):
    response = read_log(board, running_run(agent).pk)

    assert (response.status_code, response.json()) == (404, NO_LOG)


def test_a_log_file_gone_from_storage_falls_back_to_the_tail(board, process_agent, media):
    run = finished_run(process_agent)
    (media / run.log_file.name).unlink()

    response = read_log(board, run.pk)

    assert response.status_code == 200
    assert response.content == WHOLE_LOG[-4096:]


def test_the_log_is_text_whatever_accept_asks_and_its_errors_stay_json(board, process_agent):
    run = finished_run(process_agent, log=b"hello\n")
    queued = factories.HeartbeatRunFactory(agent=process_agent, lease_expires_at=None)

    for accept in ("application/json", "text/html", "image/png"):
        response = board.get(f"/api/heartbeat-runs/{run.pk}/log", HTTP_ACCEPT=accept)
        assert (response.status_code, response["Content-Type"]) == (200, TEXT), accept
        assert text_of(response) == b"hello\n"
        missing = board.get(f"/api/heartbeat-runs/{queued.pk}/log", HTTP_ACCEPT=accept)
        assert (missing.status_code, missing.json()) == (404, NO_LOG), accept


def test_every_agent_of_the_company_may_read_a_log_as_it_may_read_the_run(
    process_agent, peer_client
):
    finished = finished_run(process_agent, log=b"done\n")
    running = running_run(process_agent, tail="working\n")
    # The command itself, with the run token it was given (PAPERCLIP_API_KEY).
    own_command = client_for(mint_run_token(running))

    for reader, run, text in (
        (peer_client, finished, b"done\n"),
        (peer_client, running, b"working\n"),
        (own_command, running, b"working\n"),
        (own_command, finished, b"done\n"),
    ):
        response = read_log(reader, run.pk)
        assert response.status_code == 200, response
        assert text_of(response) == text


def test_another_companys_board_and_agent_get_404_as_for_a_missing_run(
    process_agent, other_board, other_client
):
    run = finished_run(process_agent, log=b"secret plans\n")

    for outsider in (other_board, other_client):
        response = read_log(outsider, run.pk)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
        assert b"secret plans" not in response.content


@pytest.mark.parametrize("ref", ["run_nope", "00000000-0000-0000-0000-000000000000", "x" * 300])
def test_a_bad_or_unknown_run_id_is_404(board, ref):
    response = read_log(board, ref)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_reading_a_log_needs_credentials(anon, process_agent):
    run = finished_run(process_agent, log=b"done\n")

    response = read_log(anon, run.pk)

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_only_get_reads_a_log(board, process_agent):
    run = finished_run(process_agent, log=b"done\n")

    response = board.post(f"/api/heartbeat-runs/{run.pk}/log", {}, format="json")

    assert response.status_code == 405
    run.refresh_from_db()
    assert run.log_file.read() == b"done\n"


# -- the run object -----------------------------------------------------------------------------


def test_a_run_read_by_id_says_its_exit_code_and_the_end_of_its_output(board, process_agent):
    run = finished_run(process_agent)

    body = board.get(f"/api/heartbeat-runs/{run.pk}").json()

    assert (body["id"], body["status"], body["exitCode"]) == (wire(run), "succeeded", 0)
    assert body["logTail"] == WHOLE_LOG[-4096:].decode()


def test_a_run_that_ran_no_command_has_a_null_exit_code_and_an_empty_tail(board, agent):
    run = running_run(agent)

    body = board.get(f"/api/heartbeat-runs/{run.pk}").json()

    assert (body["exitCode"], body["logTail"]) == (None, "")


def test_lists_of_runs_say_the_exit_code_but_leave_the_tail_out(board, company, process_agent):
    failed = factories.HeartbeatRunFactory(
        agent=process_agent,
        status=HeartbeatRun.Status.FAILED,
        finished_at=timezone.now(),
        exit_code=1,
        log_tail="Traceback (most recent call last):\n" * 100,
    )
    issue = factories.IssueFactory(company=company)
    HeartbeatRun.objects.filter(pk=failed.pk).update(issue_id=issue.pk)

    for url in (f"/api/companies/{company.pk}/heartbeat-runs", f"/api/issues/{issue.pk}/runs"):
        response = board.get(url)
        assert response.status_code == 200, response.json()
        [row] = response.json()
        assert (row["id"], row["exitCode"]) == (wire(failed), 1), url
        assert "logTail" not in row, url
