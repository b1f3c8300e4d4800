"""The process adapter: a wake runs the agent's command on the background worker.

For an agent with `adapterType: process` and `adapterConfig: {command, args, cwd, env,
timeoutSec, graceSec, maxConcurrentRuns}`, each new run is queued for `run_process` (on the
`agents` queue, so a long run never holds up webhook deliveries on `default`). The task:

1. starts the run, unless the agent already has `maxConcurrentRuns` (default 1) running or may
   not work now (`agents.services.run_begin`): then the run stays queued, and is started when
   one of the agent's runs ends or the agent is resumed (`start_waiting_runs`);
2. spawns the command, never through a shell, with only the wake's context in its environment
   (`PAPERCLIP_*`, Paperclip's names, ids as `/api` writes them), the config's `env`, and the
   `PATH`/`HOME`/locale it needs to start: the run token is the only credential it gets (the
   server's own environment, its database URL and secret key, stays here);
3. while it runs, renews the run's lease, keeps the end of its output on the run, and stops it
   (SIGTERM to its process group, SIGKILL after `graceSec`) when the run is cancelled (the
   board, a budget) or overruns `timeoutSec` (the run then `timed_out`);
4. saves its whole output to storage and finishes the run from the exit code (0 → succeeded,
   else failed) unless the agent finished it itself over the API (`run_exited`).

No database transaction is held while the command runs; each state change is one service call.
A worker killed mid-run leaves the run running with a lease nobody renews: it expires and heals
like any dead run (`release_stale_locks`), and the orphaned command is in its own session, so
it dies with its terminal, not with the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from typing import Any

from django.conf import settings
from django.core.files import File
from django_tasks import task

from agents.models import Agent, HeartbeatRun
from agents.runs import mint_run_token
from paperclip.api.wire import wire_id

QUEUE = "agents"
TAIL_BYTES = 4096
POLL_SECONDS = 0.5
TAIL_EVERY_SECONDS = 5  # how fresh the output's tail on a running run is
DEFAULT_TIMEOUT_SECONDS = 600
DEFAULT_GRACE_SECONDS = 10

# What a command needs from the worker's own environment to start at all; nothing else passes.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


def environment(run: HeartbeatRun, config: dict[str, Any]) -> dict[str, str]:
    """The command's environment: the wake's context as Paperclip names it, and the config's."""
    context = run.context or {}
    linked = context.get("linkedIssueIds") or []
    wake = {
        "PAPERCLIP_API_URL": settings.PAPERCLIP_API_URL,
        "PAPERCLIP_API_KEY": mint_run_token(run),
        "PAPERCLIP_AGENT_ID": wire_id(run.agent_id),
        "PAPERCLIP_COMPANY_ID": wire_id(run.company_id),
        "PAPERCLIP_RUN_ID": wire_id(run.pk),
        "PAPERCLIP_TASK_ID": wire_id(run.issue_id) if run.issue_id else "",
        "PAPERCLIP_WAKE_REASON": run.wake_reason or context.get("wakeReason", ""),
        "PAPERCLIP_WAKE_COMMENT_ID": wire_id(context["commentId"])
        if context.get("commentId")
        else "",
        "PAPERCLIP_APPROVAL_ID": wire_id(context["approvalId"])
        if context.get("approvalId")
        else "",
        "PAPERCLIP_APPROVAL_STATUS": context.get("approvalStatus") or "",
        "PAPERCLIP_LINKED_ISSUE_IDS": ",".join(wire_id(issue) for issue in linked),
    }
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    return inherited | dict(config.get("env") or {}) | {k: v for k, v in wake.items() if v}


def _tail(path: str) -> str:
    with open(path, "rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - TAIL_BYTES))
        return log.read().decode("utf-8", errors="replace")


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the command's whole process group, SIGKILL if it is still there after grace."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@task(queue_name=QUEUE)
def run_process(run_id: str) -> str:
    """Run one queued run of a process-adapter agent (see the module docstring). Answers how the
    run ended, or why it did not start."""
    from agents import services  # the services queue this task

    run = services.run_begin(run_id)
    if run is None:
        return "not started"
    config = run.agent.adapter_config or {}
    timeout = config.get("timeoutSec", DEFAULT_TIMEOUT_SECONDS)
    grace = config.get("graceSec", DEFAULT_GRACE_SECONDS)
    renew_every = max(1.0, settings.PAPERCLIP_LEASE_SECONDS / 3)
    with tempfile.NamedTemporaryFile(prefix=f"{run.pk}-", suffix=".log", delete=False) as log:
        log_path = log.name
    stopped_by = ""
    try:
        with open(log_path, "wb") as output:
            try:
                process = subprocess.Popen(  # the board's command, never through a shell
                    [config["command"], *config.get("args", [])],
                    cwd=config.get("cwd") or None,
                    env=environment(run, config),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped as a whole
                )
            except OSError as exc:
                output.write(f"paperclip: could not start the command: {exc}\n".encode())
                return services.run_exited(run.pk, exit_code=None, log_path=log_path)
            started = last_renewal = last_tail = time.monotonic()
            while process.poll() is None:
                time.sleep(POLL_SECONDS)
                now = time.monotonic()
                if now - started > timeout:
                    stopped_by = "timeout"
                elif not services.run_still_wanted(run.pk):
                    stopped_by = "cancelled"
                if stopped_by:
                    _stop(process, grace)
                    break
                renew = now - last_renewal >= renew_every
                if renew or now - last_tail >= TAIL_EVERY_SECONDS:
                    services.run_renew(run.pk, run.agent_id, tail=_tail(log_path), lease=renew)
                    last_tail = now
                    last_renewal = now if renew else last_renewal
        return services.run_exited(
            run.pk,
            exit_code=process.returncode,
            timed_out=stopped_by == "timeout",
            log_path=log_path,
        )
    finally:
        os.unlink(log_path)


def save_log(run: HeartbeatRun, log_path: str) -> None:
    """Keep the run's whole output in storage and its end on the row (the caller saves)."""
    with open(log_path, "rb") as log:
        run.log_file.save(f"{run.pk}.log", File(log), save=False)
    run.log_tail = _tail(log_path)


def queue_run(run: HeartbeatRun) -> None:
    """Start the run on the worker once the transaction that queued it commits."""
    from django.db import transaction

    run_id = run.pk
    transaction.on_commit(lambda: run_process.enqueue(run_id))


def runs_process(agent: Agent) -> bool:
    return agent.adapter_type == Agent.Adapter.PROCESS and bool(
        (agent.adapter_config or {}).get("command")
    )
