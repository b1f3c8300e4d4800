"""`make bench`: Paperclip on throwaway PostgreSQL databases, measured over HTTP against the
goals of issue 15 (TARGETS below).

    url=$(scripts/pg-prepare) && export "$url" && .venv/bin/python -m bench.run

For each size in BENCH_SIZES (10,000 and 100,000 issues; 1000000 on request):

1. creates `paperclip_bench_<random>` with the role of DATABASE_URL, migrates and seeds it
   (bench/seed.py: the issues over 4 companies, agents with API keys, runs, activity; each
   benchmark agent's inbox holds 56 issues at every size), and snapshots the claimable issues
   so that claimed ones can be put back (bench/reopen.py: no phase runs out of work);
2. starts the app server as production runs it (BENCH_SERVER: granian, the default, or
   gunicorn; DEBUG off, persistent connections) on a free port of 127.0.0.1, waits for
   /api/health, and wakes and starts one run per benchmark agent over the API;
3. profiles each hot request in-process on the same code path (Django's CaptureQueriesContext):
   the statements it sends, and their SQL, which bench/plans.py EXPLAINs (ANALYZE, BUFFERS) in
   the database: the checkout's conditional UPDATE (rolled back), the inbox list, inbox-lite
   and the /v1 task list, flagging any Seq Scan on the big tables;
4. measures, 10 clients (one thread and keep-alive connection per agent), each phase
   BENCH_SECONDS after a warm-up, reading every app worker's RSS before and after: the inbox
   list, inbox-lite, the inbox again with If-None-Match (304), the /v1 task list, checkout on
   distinct issues, checkout with 10 agents racing per issue (exactly one 200 and nine 409s per
   race, verified), the /v1 claim, issue creation, and the raw conditional UPDATE over psycopg
   (the ceiling that every rate is shown as a share of);
5. stops the server and drops the database, also on failure or Ctrl-C.

It prints one table per size with every goal `met` or `missed`, the memory and scaling lines,
writes bench/results/<UTC timestamp>.json and bench/results/latest.json (plans included), and
exits 1 when a race ended with other than exactly one winner.

Environment knobs: BENCH_SIZES (10000,100000), BENCH_SERVER (granian | gunicorn),
BENCH_SERVER_OPTIONS (that server's options, see SERVERS; BENCH_GUNICORN is still read for
gunicorn), BENCH_AGENTS (10), BENCH_SECONDS (measured seconds per HTTP phase, 10),
BENCH_RAW_SECONDS (5), BENCH_WARMUP (2), BENCH_KEEP_DB=1 (keep the databases and print their
URLs, for profiling). BENCH_ISSUES=N is BENCH_SIZES=N.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.metadata
import json
import os
import platform
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.load import (
    Client,
    CpuProbe,
    PhaseResult,
    Sample,
    machine_busy,
    run_phase,
    worker_rss,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SECRET_KEY = "bench-" + secrets.token_urlsafe(50)  # settings refuse < 50 chars with DEBUG off

# The app servers, with their default options: two processes (one per core of the 2-core
# machine), a few threads each to overlap database waits, keep-alive. granian is the default and
# the documented production server: it measured faster on 7 of 8 phases (README, Benchmark).
SERVERS = {
    "gunicorn": "--workers 2 --worker-class gthread --threads 4",
    "granian": "--workers 2 --blocking-threads 4",
}


@dataclass(frozen=True)
class Target:
    """One goal of issue 15: `phase`'s `metric` compared with `goal` by `op`."""

    phase: str  # a phase key, or "memory" / "scaling"
    metric: str
    op: str  # ">=", "<" or "<="
    goal: float
    why: str = ""

    @property
    def name(self) -> str:
        return f"{self.phase} {self.metric}"

    def met(self, value: float | None) -> bool:
        if value is None:
            return False
        return {">=": value >= self.goal, "<": value < self.goal, "<=": value <= self.goal}[self.op]


# Issue 15's goals, measured by `make bench` (never asserted in timed tests). Rates are of all
# 10 clients together; shares are of the raw conditional UPDATE in the same run.
TARGETS: tuple[Target, ...] = (
    Target("checkout", "rate_per_s", ">=", 600),
    Target("checkout", "share_of_raw", ">=", 0.25),
    Target("checkout", "p99_ms", "<", 50),
    Target("checkout_race", "rate_per_s", ">=", 600),
    Target("checkout_race", "races_one_winner_share", ">=", 1.0, "exactly one winner, always"),
    Target("inbox", "rate_per_s", ">=", 600),
    Target("inbox", "p50_ms", "<", 20),
    Target("inbox_lite", "rate_per_s", ">=", 1000),
    Target("inbox_304", "rate_per_s", ">=", 1000, "a 304 without building the list"),
    Target("create", "rate_per_s", ">=", 400),
    Target("v1_claim", "rate_per_s", ">=", 600),
    Target("v1_tasks", "rate_per_s", ">=", 600),
    Target("v1_tasks", "p50_ms", "<", 20),
    Target("memory", "rss_growth_max", "<=", 0.20, "each app worker's RSS over each phase"),
    Target("scaling", "checkout_rate_ratio", ">=", 0.80, "rate at this size / at the smallest"),
    Target("scaling", "inbox_rate_ratio", ">=", 0.80, "rate at this size / at the smallest"),
)

# The phases, in the order they run: reads first, while every inbox holds its seeded rows.
LABELS = {
    "inbox": "inbox GET issues?assigneeAgentId&status",
    "inbox_lite": "inbox-lite GET agents/me/inbox-lite",
    "inbox_304": "inbox again, If-None-Match (304)",
    "v1_tasks": "/v1 task list GET issues?agent&status",
    "checkout": "checkout, distinct issues",
    "checkout_race": "checkout, 10 agents racing (1 winner)",
    "v1_claim": "/v1 claim POST issues/{id}/runs",
    "create": "create issue POST companies/{cid}/issues",
    "raw_update": "raw conditional UPDATE, psycopg",
}
INBOX_STATUSES = "todo,in_progress,blocked"
V1_INBOX_STATES = "assigned,running,handoff"  # the same issues in /v1's terms

T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"bench [{time.perf_counter() - T0:6.1f}s] {message}", flush=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_sizes() -> list[int]:
    raw = os.environ.get("BENCH_SIZES", "").strip() or os.environ.get("BENCH_ISSUES", "").strip()
    sizes = [int(v.replace("_", "")) for v in raw.split(",") if v.strip()] if raw else []
    return sorted(set(sizes)) or [10_000, 100_000]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the throwaway database ---


class Database:
    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.name = f"paperclip_bench_{secrets.token_hex(4)}"
        self.url = with_database(admin_url, self.name)
        self.created = False

    def create(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.created = True

    def drop(self) -> None:
        if not self.created:
            return
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(self.name)
        )
        # FORCE may not end an autovacuum worker that has just started on the database (that
        # needs pg_signal_backend): it finishes in moments, so try again a few times.
        for attempt in range(10):
            try:
                with psycopg.connect(self.admin_url, autocommit=True) as conn:
                    conn.execute(statement)
                break
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 9:
                    raise
                time.sleep(1)
        self.created = False


# --- the app server ---


class Server:
    """gunicorn or granian serving paperclip.wsgi, in its own session."""

    def __init__(self, kind: str, database_url: str, options: str, logfile: Path):
        if kind not in SERVERS:
            raise ValueError(f"BENCH_SERVER must be one of {', '.join(SERVERS)}, not {kind!r}")
        self.kind = kind
        self.port = free_port()
        self.options = options
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_CONN_MAX_AGE": "600",
            "PYTHONWARNINGS": "ignore:No directory at",
        }

    @property
    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            return [
                sys.executable, "-m", "gunicorn", "paperclip.wsgi",
                "--bind", f"127.0.0.1:{self.port}", *shlex.split(self.options),
            ]  # fmt: skip
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(self.port), *shlex.split(self.options),
            "paperclip.wsgi:application",
        ]  # fmt: skip

    @property
    def display(self) -> str:
        return " ".join(self.command[2:])

    @property
    def version(self) -> str:
        return importlib.metadata.version(self.kind)

    def start(self, timeout: float = 30.0) -> None:
        out = self.logfile.open("wb")
        # Its own session: a Ctrl-C in the terminal reaches us, and we stop it in order.
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        client = Client("127.0.0.1", self.port, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            with contextlib.suppress(OSError, Exception):
                status, _, _ = client.call("GET", "/api/health")
                if status == 200:
                    client.conn.close()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not answer /api/health in {timeout}s:\n{self.tail()}")

    def workers_rss(self) -> dict[int, int]:
        return worker_rss(self.proc.pid) if self.proc else {}

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # both stop at once on SIGINT
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- what the hot requests cost, and their SQL ---


class _Captured(Exception):
    pass


def capture_checkout_update():
    """The conditional UPDATE `Issue.objects.try_checkout` sends, as (sql, make_params).

    try_checkout runs with sentinel values and the statement is caught before it reaches the
    database, so the raw loop always sends exactly what the ORM sends today.
    """
    from django.db import connection

    from issues.models import Issue

    issue, agent, run = "iss_" + "1" * 26, "agt_" + "2" * 26, "run_" + "3" * 26
    captured: dict[str, Any] = {}

    def wrapper(execute, sql_text, params, many, context):
        captured["sql"], captured["params"] = sql_text, list(params or ())
        raise _Captured

    with connection.execute_wrapper(wrapper), contextlib.suppress(_Captured):
        Issue.objects.try_checkout(
            issue_id=issue, agent_id=agent, run_id=run, expected=["todo", "backlog", "blocked"]
        )
    # Django's choices are enums; plain psycopg would send an enum's name, not its value.
    template = [v.value if isinstance(v, enum.Enum) else v for v in captured["params"]]
    missing = [v for v in (issue, agent, run) if v not in template]
    if missing or "UPDATE" not in captured["sql"].upper():
        raise RuntimeError(f"unexpected checkout SQL: {captured}")

    def make_params(issue_id: str, agent_id: str, run_id: str) -> list[Any]:
        now = datetime.now(UTC)
        swap = {issue: issue_id, agent: agent_id, run: run_id}
        return [now if isinstance(v, datetime) else swap.get(v, v) for v in template]

    return captured["sql"], make_params


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _queries(statements: list[str]) -> int:
    """Statements other than transaction control and the health check."""
    return sum(
        1
        for q in statements
        if (q or "").strip() != "SELECT 1"
        and not (q or "").lstrip().upper().startswith(TRANSACTION_CONTROL)
    )


def inbox_path(agent) -> str:
    return (
        f"/api/companies/{agent.company_id}/issues?assigneeAgentId={agent.id}"
        f"&status={INBOX_STATUSES}"
    )


def v1_tasks_path(agent) -> str:
    return (
        f"/v1/companies/{agent.company_id}/issues?agent={agent.id}"
        f"&status={V1_INBOX_STATES}&limit=200"
    )


def profile_requests(agent, reserve: list[str]) -> dict[str, dict[str, Any]]:
    """Each hot request once, in-process on the real code path (Django's test client), with the
    statements it sent to PostgreSQL. Uses reserve[0:4] (claimed here)."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    # A 500 is recorded as the status it is, not raised: the bench reports what the app does.
    client = DjangoClient(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {agent.token}")
    # With persistent connections and CONN_HEALTH_CHECKS, Django opens every request with a
    # `SELECT 1` on the raw connection, which query capture does not see (the PostgreSQL
    # statement log does): count it, so the figures are round trips as the server sees them.
    db = connection.settings_dict
    health = ["SELECT 1"] if db.get("CONN_HEALTH_CHECKS") and db.get("CONN_MAX_AGE") else []
    out: dict[str, dict[str, Any]] = {}

    def run(name: str, method: str, path: str, **extra):
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(client, method)(path, **extra)
        statements = health + [q["sql"] for q in ctx.captured_queries]
        out[name] = {
            "status": response.status_code,
            "statements": len(statements),
            "queries": _queries(statements),
            "sql": statements,
        }
        return response

    post = {"content_type": "application/json"}
    first = []
    for iid in reserve[:3]:  # a run's first requests in a process may renew its lease
        run("checkout", "post", f"/api/issues/{iid}/checkout", data={}, **post,
            HTTP_X_PAPERCLIP_RUN_ID=agent.run_id)  # fmt: skip
        first.append(out["checkout"]["statements"])
    out["checkout"]["first_requests"] = first
    response = run("inbox", "get", inbox_path(agent))
    run("inbox_304", "get", inbox_path(agent), HTTP_IF_NONE_MATCH=response.get("ETag", ""))
    run("inbox_lite", "get", "/api/agents/me/inbox-lite")
    run("v1_tasks", "get", v1_tasks_path(agent))
    run("v1_claim", "post", f"/v1/companies/{agent.company_id}/issues/{reserve[3]}/runs",
        data={}, **post)  # fmt: skip
    run("create", "post", f"/api/companies/{agent.company_id}/issues",
        data={"title": "Bench profile"}, **post)  # fmt: skip
    return out


def explain_hot(url: str, profile, update_sql: str, params: list[Any]) -> dict[str, Any]:
    """The plans of issue 15's hot queries (bench/plans.py)."""
    from bench.plans import explain_request, explain_update

    checkout = explain_update(url, update_sql, params)
    selects = explain_request(url, profile["checkout"]["sql"])
    checkout["queries"] += selects["queries"]
    checkout["seq_scans_flagged"] = sorted(
        set(checkout["seq_scans_flagged"]) | set(selects["seq_scans_flagged"])
    )
    checkout["errors"] = selects["errors"]
    plans = {"checkout": checkout}
    for name in ("inbox", "inbox_lite", "v1_tasks"):
        plans[name] = explain_request(url, profile[name]["sql"])
    return plans


# --- phases ---


def start_runs(host: str, port: int, agents) -> None:
    """Each agent wakes itself and starts the run, as a real agent does."""
    for agent in agents:
        client = Client(host, port, agent.token)
        status, body = client.json("POST", f"/api/agents/{agent.id}/wakeup", {"reason": "bench"})
        if status != 202:
            raise RuntimeError(f"wakeup of {agent.name}: {status} {body}")
        agent.run_id = body["id"]
        status, body = client.json("POST", f"/api/heartbeat-runs/{agent.run_id}/start")
        if status != 200 or body.get("status") != "running":
            raise RuntimeError(f"start of {agent.run_id}: {status} {body}")
        client.conn.close()


def stored_run_id(agent) -> str:
    """The agent's run id as the database stores it (the API may answer it as a UUID)."""
    from paperclip.ids import parse_id

    return parse_id(agent.run_id, "run") or agent.run_id


def warm_workers(clients, agents, pools, rounds: int = 4) -> None:
    """Every client sends each measured request a few times, untimed and all at once, so the
    workers have imported, connected and prepared what they serve before the first phase: the
    RSS compared over a phase is then a warm worker's, and a cold start is reported apart."""

    def warm(i: int) -> None:
        client, agent, pool = clients[i], agents[i], pools[i]
        company = agent.company_id
        for r in range(rounds):
            client.reset()  # a new connection each round: the server may hand it to any worker
            for path in (inbox_path(agent), "/api/agents/me/inbox-lite", v1_tasks_path(agent)):
                client.call("GET", path)
                etag = client.last_headers.get("ETag") if client.last_headers else None
                if etag:
                    client.call("GET", path, headers={"If-None-Match": etag})
            if len(pool) > 2 * rounds:
                client.call("POST", f"/api/issues/{pool[r]}/checkout", {}, run_id=agent.run_id)
                client.call("POST", f"/v1/companies/{company}/issues/{pool[rounds + r]}/runs", {})
            client.call("POST", f"/api/companies/{company}/issues", {"title": "Bench: warm-up"})

    threads = [threading.Thread(target=warm, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _rows(body: Any) -> int:
    """Rows of a list answer: /api's plain array, or /v1's envelope."""
    return len(body["data"]) if isinstance(body, dict) else len(body)


def read_phase(clients, paths, *, conditional: bool = False, **run) -> PhaseResult:
    """Each client GETs its path again and again. `conditional`: with the ETag of its first
    answer in If-None-Match, as an agent polling an unchanged inbox does."""
    rows, headers = [], []
    for client, path in zip(clients, paths, strict=True):
        status, body = client.json("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        rows.append(_rows(body))
        etag = client.last_headers.get("ETag") if client.last_headers else None
        if conditional and not etag:
            raise RuntimeError(f"GET {path} answered no ETag")
        headers.append({"If-None-Match": etag} if conditional else {})

    def make(client: Client, path: str, extra: dict[str, str]):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            while not stop.is_set():
                t0 = time.perf_counter()
                status, _, latency = client.call("GET", path, headers=extra)
                samples.append((t0, latency, status))
            return samples

        return worker

    result = run_phase(
        [make(c, p, h) for c, p, h in zip(clients, paths, headers, strict=True)], **run
    )
    result.extra["rows_per_response"] = {
        "min": min(rows),
        "max": max(rows),
        "mean": round(sum(rows) / len(rows), 1),
    }
    return result


def pool_phase(url: str, reopener, pools, request, **run) -> PhaseResult:
    """Client i works through pools[i]: `request(i, issue_id)` answers (status, latency). At the
    end of its pool a client puts its issues back as seeded (bench/reopen.py: a few hundred
    rows, milliseconds, on its own connection) and starts over."""

    def make(i: int, pool: list[str]):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            if not pool:
                return samples
            with psycopg.connect(url, autocommit=True) as conn:
                while not stop.is_set():
                    for iid in pool:
                        if stop.is_set():
                            break
                        t0 = time.perf_counter()
                        status, latency = request(i, iid)
                        samples.append((t0, latency, status))
                    else:
                        reopener.restore(conn, pool)
            return samples

        return worker

    return run_phase([make(i, p) for i, p in enumerate(pools)], **run)


def http_pool_phase(url, reopener, clients, pools, method, path_of, body, run_ids=None, **run):
    """pool_phase over HTTP: client i sends `method path_of(issue)` with `body`."""

    def request(i: int, iid: str) -> tuple[int, float]:
        run_id = run_ids[i] if run_ids else None
        status, _, latency = clients[i].call(method, path_of(iid), body, run_id=run_id)
        return status, latency

    return pool_phase(url, reopener, pools, request, **run)


def create_phase(clients, agents, **run) -> PhaseResult:
    """Each agent creates issues in its company, one after another."""

    def make(client: Client, agent):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            path, n = f"/api/companies/{agent.company_id}/issues", 0
            while not stop.is_set():
                n += 1
                body = {"title": f"Bench: {agent.name} files issue {n}"}
                t0 = time.perf_counter()
                status, _, latency = client.call("POST", path, body)
                samples.append((t0, latency, status))
            return samples

        return worker

    return run_phase([make(c, a) for c, a in zip(clients, agents, strict=True)], **run)


def contention_phase(clients, agents, pool, reopener, **run) -> PhaseResult:
    """All agents fire at the same issue at once (a barrier per issue), issue after issue; at
    the end of the pool its issues are put back as seeded and the races go on."""
    n = len(clients)
    state = {"round": -1, "done": False, "position": -1}
    outcomes: list[list[int]] = []
    stop_ref: list[threading.Event] = []

    def advance() -> None:  # runs in one thread while the others wait at the barrier
        if (stop_ref and stop_ref[0].is_set()) or not pool:
            state["done"] = True
            return
        state["position"] += 1
        if state["position"] == len(pool):
            reopener.restore(ids=pool)
            state["position"] = 0
        state["round"] += 1
        outcomes.append([0] * n)

    barrier = threading.Barrier(n, action=advance)

    def make(i: int, client: Client, run_id: str):
        def worker(stop: threading.Event) -> list[Sample]:
            if not stop_ref:
                stop_ref.append(stop)
            samples: list[Sample] = []
            try:
                while True:
                    barrier.wait(timeout=60)
                    if state["done"]:
                        break
                    r, issue = state["round"], pool[state["position"]]
                    t0 = time.perf_counter()
                    status, _, latency = client.call(
                        "POST", f"/api/issues/{issue}/checkout", {}, run_id=run_id
                    )
                    outcomes[r][i] = status
                    samples.append((t0, latency, status))
            except BaseException:
                barrier.abort()
                raise
            return samples

        return worker

    result = run_phase(
        [make(i, c, a.run_id) for i, (c, a) in enumerate(zip(clients, agents, strict=True))],
        **run,
    )
    good = sum(1 for o in outcomes if o.count(200) == 1 and o.count(409) == n - 1)
    result.extra["issues_raced"] = len(outcomes)
    result.extra["issues_with_exactly_one_winner"] = good
    result.extra["races_one_winner_share"] = round(good / len(outcomes), 6) if outcomes else None
    result.extra["issues_per_s"] = round(len(result.samples) / n / result.window_s, 1)
    return result


def raw_phase(url, reopener, update_sql, make_params, agents, pools, **run) -> PhaseResult:
    """The checkout's UPDATE straight over psycopg: one autocommit connection per agent, each
    through its own pool of issues (put back as seeded at its end)."""
    conns = [psycopg.connect(url, autocommit=True) for _ in agents]
    run_pks = [stored_run_id(a) for a in agents]

    def request(i: int, iid: str) -> tuple[int, float]:
        params = make_params(iid, agents[i].id, run_pks[i])
        t0 = time.perf_counter()
        cur = conns[i].execute(update_sql, params)
        return cur.rowcount, time.perf_counter() - t0

    try:
        result = pool_phase(url, reopener, pools, request, **run)
    finally:
        for c in conns:
            c.close()
    return result


# --- report ---


def machine_info(database_url: str, server: Server) -> dict[str, Any]:
    import django

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": "",
        "mem_gib": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "server": server.kind,
        server.kind: server.version,
        "psycopg": psycopg.__version__,
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    with psycopg.connect(database_url) as conn:
        info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
        info["postgres_settings"] = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
            for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
        }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        info["git_dirty"] = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    info["server_command"] = server.display
    info["server_env"] = {
        k: server.env[k] for k in ("DEBUG", "ALLOWED_HOSTS", "DATABASE_CONN_MAX_AGE")
    }
    return info


def fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def render_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'operation':<42} {'requests':>9} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    header += f"{'share of raw':>12}"
    lines = [header, "-" * len(header)]
    for r in rows:
        share = r.get("share_of_raw")
        lines.append(
            f"{r['operation']:<42} {r['requests']:>9,} {r['rate_per_s']:>9,.1f} "
            f"{fmt(r['p50_ms'], '8.2f'):>8} {fmt(r['p99_ms'], '8.2f'):>8} "
            f"{fmt(None if share is None else share * 100, '11.1f'):>11}{'%' if share else ' '}"
        )
    return "\n".join(lines)


def rss_change(before: dict[int, int], after: dict[int, int]) -> dict[str, Any]:
    """Each worker's RSS before and after a phase (MiB), and the largest growth."""
    growth = {pid: (after[pid] - kib) / kib for pid, kib in before.items() if pid in after and kib}
    return {
        "before_mib": {str(p): round(k / 1024, 1) for p, k in sorted(before.items())},
        "after_mib": {str(p): round(k / 1024, 1) for p, k in sorted(after.items())},
        "growth_max": round(max(growth.values()), 4) if growth else None,
        "workers_changed": sorted(before) != sorted(after),
    }


def value_of(target: Target, report: dict[str, Any]) -> float | None:
    if target.phase == "memory":
        return report["memory"]["growth_max"]
    if target.phase == "scaling":
        return report.get("scaling", {}).get(target.metric)
    return report["phases"].get(target.phase, {}).get(target.metric)


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for t in TARGETS:
        if t.phase == "scaling" and "scaling" not in report:
            continue  # the smallest size is what the others are compared with
        value = value_of(t, report)
        out.append(
            {
                "target": t.name,
                "value": value,
                "op": t.op,
                "goal": t.goal,
                "met": t.met(value),
                "why": t.why,
            }
        )
    return out


def fmt_value(value: float | None, metric: str) -> str:
    if value is None:
        return "not measured"
    if metric in ("share_of_raw", "rss_growth_max") or metric.endswith("_share"):
        return f"{value * 100:.1f}%"
    if metric.endswith("_ratio"):
        return f"{value:.2f}"
    if metric.endswith("per_s"):
        return f"{value:,.1f}/s"
    return f"{value:.2f} ms" if metric.endswith("_ms") else f"{value:g}"


def fmt_goal(t: dict[str, Any]) -> str:
    metric = t["target"].split()[-1]
    goal = fmt_value(t["goal"], metric).replace(".0/s", "/s").replace(".00 ms", " ms")
    return f"{t['op']} {goal.replace('.0%', '%')}"


def print_size(report: dict[str, Any], n: int) -> None:
    phases, st, plans = report["phases"], report["statements"], report["plans"]
    print(f"\n== {report['issues']:,} issues, {report['server']} ==")
    print(report["table"])
    print()
    print(
        "statements to PostgreSQL per request (health check, BEGIN/COMMIT, SAVEPOINTs "
        "included; queries without them in brackets): "
        + ", ".join(f"{k} {v['statements']} ({v['queries']})" for k, v in st.items())
        + f"; a run's first checkouts: {st['checkout']['first_requests']}"
    )
    for key in ("checkout", "v1_claim", "create", "inbox_304"):
        print(f"{key} statuses: {phases[key]['statuses']}")
    race = phases["checkout_race"]
    raced, won = race["issues_raced"], race["issues_with_exactly_one_winner"]
    print(
        f"race check: {won} of {raced} issues had exactly one 200 and {n - 1} 409s "
        f"({race['issues_per_s']} issues/s); statuses {race['statuses']}"
        + ("" if won == raced and raced else "  <-- FAILED: every race must end 1 x 200 + 409s")
    )
    print(
        "rows per response: "
        + ", ".join(
            f"{k} {phases[k]['rows_per_response']['mean']:g}"
            for k in ("inbox", "inbox_lite", "v1_tasks")
        )
    )
    print(
        f"inbox with If-None-Match: {st['inbox_304']['status']} in-process, "
        f"{st['inbox_304']['statements']} statements against the list's "
        f"{st['inbox']['statements']}; the list's main query "
        + (
            "RAN (the list is built, then hashed)"
            if report["conditional_builds_list"]
            else "did not run"
        )
    )
    print(
        f"CPU: % of {os.cpu_count()} cores, and ms per request (app = {report['server_kind']}, "
        "db = this database's backends, client = this load generator, other = the rest)"
    )
    for key, label in LABELS.items():
        pct, per = phases[key]["cpu_pct"], phases[key]["cpu_ms_per_request"]
        print(
            f"  {label:<42} "
            + "  ".join(f"{k} {v:4.0f}%" for k, v in pct.items())
            + "   per request: "
            + "  ".join(f"{k} {v:.2f}" for k, v in per.items() if v is not None)
        )
    cold = report["memory"]["cold_start"]
    print(
        "app workers' RSS (MiB) before -> after each phase; after their start and the warm-up "
        "requests: "
        + "  ".join(
            f"{b:.0f}->{cold['after_mib'].get(p, 0):.0f}" for p, b in cold["before_mib"].items()
        )
    )
    for key in LABELS:
        rss = phases[key]["rss"]
        pairs = [
            f"{b:.0f}->{rss['after_mib'].get(p, float('nan')):.0f}"
            for p, b in rss["before_mib"].items()
        ]
        growth = rss["growth_max"]
        growth_pct = None if growth is None else growth * 100
        print(
            f"  {LABELS[key]:<42} {'  '.join(pairs):<24} max {fmt(growth_pct, '+.1f')}%"
            + ("  (workers changed)" if rss["workers_changed"] else "")
        )
    print("plans (EXPLAIN ANALYZE, BUFFERS; in the JSON in full):")
    for key, plan in plans.items():
        main = plan["main"] or {}
        flags = plan["seq_scans_flagged"]
        print(
            f"  {key:<11} {fmt(main.get('execution_ms'), '.2f')} ms  {main.get('outline', '—')}"
            + (f"  <-- Seq Scan on {', '.join(flags)}" if flags else "")
            + (f"  ({len(plan['errors'])} not explained)" if plan["errors"] else "")
        )
    if "scaling" in report:
        base = report["scaling"]["compared_with"]
        print(
            f"scaling against {base['issues']:,} issues: "
            + ", ".join(
                f"{k} {report['phases'][k]['rate_per_s']:,.1f}/s against "
                f"{base[k]:,.1f}/s ({report['scaling'][f'{k}_rate_ratio']})"
                for k in ("checkout", "inbox")
            )
        )
    for t in report["targets"]:
        metric = t["target"].split()[-1]
        print(
            f"target {t['target']} {fmt_goal(t)}: {fmt_value(t['value'], metric)} "
            f"{'met' if t['met'] else 'missed'}" + (f"  ({t['why']})" if t["why"] else "")
        )
    met = sum(t["met"] for t in report["targets"])
    print(f"{report['issues']:,} issues: {met} of {len(report['targets'])} targets met")


def write_results(report: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, default=str) + "\n"
    path = RESULTS / f"{stamp}.json"
    for target in (path, RESULTS / "latest.json"):
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return path


# --- the driver ---


@dataclass
class Config:
    base_url: str
    agents: int
    seconds: float
    raw_seconds: float
    warmup: float
    server: str
    server_options: str
    keep_db: bool


def measure_size(issues: int, cfg: Config, cleanup: list) -> dict[str, Any]:
    """One size: database, seed, server, profile and plans, phases; answers its report."""
    from django.core.management import call_command
    from django.db import connections

    from bench.reopen import Reopener
    from bench.seed import seed

    db = Database(cfg.base_url)
    cleanup.append(db)
    log(f"{issues:,} issues: creating database {db.name}")
    db.create()
    connections.close_all()
    connections.databases["default"]["NAME"] = db.name  # the in-process side follows
    call_command("migrate", interactive=False, verbosity=0)
    log(f"seeding {issues:,} issues")
    seeded = seed(issues=issues, bench_agents=cfg.agents, log=log)
    agents, n = seeded.agents, len(seeded.agents)
    reopener = Reopener(db.url, seeded.claimable + seeded.claimable_elsewhere)

    server = Server(cfg.server, db.url, cfg.server_options, Path(f"/tmp/{db.name}-server.log"))
    cleanup.append(server)
    log(f"starting {server.display}")
    server.start()
    host, port = "127.0.0.1", server.port
    start_runs(host, port, agents)
    log(f"{n} agents woke and started their runs")

    # The benchmark company's claimable issues: a few for the profile and the plans, a pool
    # for the races, the rest split between the agents (checkout, then /v1 claim).
    claimable = list(seeded.claimable)
    reserve, claimable = claimable[:8], claimable[8:]
    race_size = min(300, len(claimable) // 5)
    race_pool, claimable = claimable[:race_size], claimable[race_size:]
    pools = [claimable[i::n] for i in range(n)]
    raw_pools = [seeded.claimable_elsewhere[i::n] for i in range(n)]

    profile = profile_requests(agents[0], reserve)
    update_sql, make_params = capture_checkout_update()
    params = make_params(reserve[5], agents[0].id, stored_run_id(agents[0]))
    plans = explain_hot(db.url, profile, update_sql, params)
    inbox_main = (plans["inbox"]["main"] or {}).get("sql")
    log(
        "statements per request: "
        + ", ".join(f"{k} {v['statements']}" for k, v in profile.items())
        + "; flagged Seq Scans: "
        + (
            ", ".join(
                f"{k}: {p['seq_scans_flagged']}" for k, p in plans.items() if p["seq_scans_flagged"]
            )
            or "none"
        )
    )
    connections.close_all()

    clients = [Client(host, port, a.token) for a in agents]
    cold = server.workers_rss()
    warm_workers(clients, agents, pools)
    warm = server.workers_rss()
    log(
        "warmed the workers (each request a few times): RSS "
        + ", ".join(f"{cold[p] / 1024:.0f} -> {warm.get(p, 0) / 1024:.0f} MiB" for p in cold)
    )
    probe = CpuProbe(server.proc.pid, db.name)
    busy = machine_busy(1.0)
    log(f"machine busy before measuring: {busy * 100:.0f}% of {os.cpu_count()} cores")
    if busy > 0.15:
        log("WARNING: something else is using the CPU; the figures will be low and noisy")
    run = {"duration": cfg.seconds, "warmup": cfg.warmup, "probe": probe}
    run_ids = [a.run_id for a in agents]
    company = agents[0].company_id
    phases: dict[str, dict[str, Any]] = {}
    measures = {
        "inbox": lambda: read_phase(clients, [inbox_path(a) for a in agents], **run),
        "inbox_lite": lambda: read_phase(clients, ["/api/agents/me/inbox-lite"] * n, **run),
        "inbox_304": lambda: read_phase(
            clients, [inbox_path(a) for a in agents], conditional=True, **run
        ),
        "v1_tasks": lambda: read_phase(clients, [v1_tasks_path(a) for a in agents], **run),
        "checkout": lambda: http_pool_phase(
            db.url,
            reopener,
            clients,
            pools,
            "POST",
            lambda i: f"/api/issues/{i}/checkout",
            {},
            run_ids,
            **run,
        ),
        "checkout_race": lambda: contention_phase(clients, agents, race_pool, reopener, **run),
        "v1_claim": lambda: http_pool_phase(
            db.url,
            reopener,
            clients,
            pools,
            "POST",
            lambda i: f"/v1/companies/{company}/issues/{i}/runs",
            {},
            **run,
        ),
        "create": lambda: create_phase(clients, agents, **run),
        "raw_update": lambda: raw_phase(
            db.url,
            reopener,
            update_sql,
            make_params,
            agents,
            raw_pools,
            duration=cfg.raw_seconds,
            warmup=1.0,
            probe=probe,
        ),
    }
    for key, measure in measures.items():
        restored = reopener.restore()
        for c in clients:
            c.reset()
        seconds = cfg.raw_seconds if key == "raw_update" else cfg.seconds
        log(f"{LABELS[key]}: {n} clients, warm-up + {seconds:g}s (restored {restored} issues)")
        before = server.workers_rss()
        result = measure().summary()
        result["rss"] = rss_change(before, server.workers_rss())
        phases[key] = result
    for c in clients:
        c.conn.close()
    phases["raw_update"]["statuses"] = {
        f"rowcount={k}": v for k, v in phases["raw_update"]["statuses"].items()
    }

    raw_rate = phases["raw_update"]["rate_per_s"] or None
    for result in phases.values():
        result["share_of_raw"] = round(result["rate_per_s"] / raw_rate, 4) if raw_rate else None
    labels = {**LABELS, "checkout": f"checkout, {n} agents, distinct issues"}
    labels["raw_update"] = f"{LABELS['raw_update']} x{n}"
    rows = [{"operation": labels[k], **phases[k]} for k in LABELS]
    growths = [
        p["rss"]["growth_max"] for p in phases.values() if p["rss"]["growth_max"] is not None
    ]
    report = {
        "issues": issues,
        "server": server.display,
        "server_kind": server.kind,
        "machine": machine_info(db.url, server),
        "database": db.name,
        "seeded_rows": seeded.counts,
        "companies": seeded.companies,
        "machine_busy_before_pct": round(busy * 100, 1),
        "phases": phases,
        "rows": rows,
        "table": render_table(rows),
        "statements": {
            k: {**v, "sql": [(q or "")[:300] for q in v["sql"]]} for k, v in profile.items()
        },
        "conditional_builds_list": bool(inbox_main and inbox_main in profile["inbox_304"]["sql"]),
        "raw_update_sql": update_sql,
        "plans": plans,
        "memory": {
            "growth_max": max(growths) if growths else None,
            "cold_start": rss_change(cold, warm),
        },
    }
    server.stop()
    if server.proc and server.proc.returncode not in (0, None, -signal.SIGINT):
        log(f"{server.kind} exited with {server.proc.returncode}")
    else:
        server.logfile.unlink(missing_ok=True)
    connections.close_all()
    if not cfg.keep_db:  # else main() names it at the end
        db.drop()
    return report


def scaling(reports: list[dict[str, Any]]) -> None:
    """Each larger size's checkout and inbox rates as a share of the smallest size's."""
    base = reports[0]["phases"]
    for report in reports[1:]:
        phases = report["phases"]
        report["scaling"] = {
            f"{key}_rate_ratio": (
                round(phases[key]["rate_per_s"] / base[key]["rate_per_s"], 3)
                if base[key]["rate_per_s"]
                else None
            )
            for key in ("checkout", "inbox")
        }
        report["scaling"]["compared_with"] = {
            "issues": reports[0]["issues"],
            **{key: base[key]["rate_per_s"] for key in ("checkout", "inbox")},
        }


def main() -> int:
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")):
        print(
            "bench: DATABASE_URL must be a PostgreSQL URL; run `make bench`, or\n"
            '  url=$(scripts/pg-prepare) && export "$url" && .venv/bin/python -m bench.run',
            file=sys.stderr,
        )
        return 2
    kind = os.environ.get("BENCH_SERVER", "").strip() or "granian"
    if kind not in SERVERS:
        print(f"bench: BENCH_SERVER must be one of {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    options = os.environ.get("BENCH_SERVER_OPTIONS", "").strip()
    if not options and kind == "gunicorn":
        options = os.environ.get("BENCH_GUNICORN", "").strip()
    sizes = env_sizes()
    cfg = Config(
        base_url=base_url,
        agents=env_int("BENCH_AGENTS", 10),
        seconds=env_float("BENCH_SECONDS", 10.0),
        raw_seconds=env_float("BENCH_RAW_SECONDS", 5.0),
        warmup=env_float("BENCH_WARMUP", 2.0),
        server=kind,
        server_options=options or SERVERS[kind],
        keep_db=os.environ.get("BENCH_KEEP_DB", "") == "1",
    )

    # SIGTERM unwinds like Ctrl-C, so the finally below always cleans up. SIGINT is set
    # explicitly: a shell starts background jobs with it ignored, and Python keeps that.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cleanup: list[Database | Server] = []
    try:
        os.environ.update(
            DATABASE_URL=with_database(base_url, "postgres"),  # replaced per size
            DATABASE_CONN_MAX_AGE="600",
            DEBUG="0",
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1,testserver",
            DJANGO_SETTINGS_MODULE="paperclip.settings",
        )
        warnings.filterwarnings("ignore", message="No directory at")
        import django

        django.setup()
        log(f"sizes {', '.join(f'{s:,}' for s in sizes)}; {kind} {cfg.server_options}")
        reports = [measure_size(issues, cfg, cleanup) for issues in sizes]
        scaling(reports)
        for report in reports:
            report["targets"] = check_targets(report)
        n = cfg.agents
        for report in reports:
            print_size(report, n)
        if len(reports) == 1:
            print("\nscaling: one size measured; BENCH_SIZES=10000,100000 compares them")
        failed_races = [
            r["issues"]
            for r in reports
            if r["phases"]["checkout_race"]["issues_with_exactly_one_winner"]
            != r["phases"]["checkout_race"]["issues_raced"]
            or not r["phases"]["checkout_race"]["issues_raced"]
        ]
        result = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": reports[0]["machine"],
            "config": {
                "sizes": sizes,
                "agents": n,
                "seconds_per_phase": cfg.seconds,
                "raw_seconds": cfg.raw_seconds,
                "warmup_seconds": cfg.warmup,
                "server": kind,
                "server_options": cfg.server_options,
            },
            "targets_table": [t.__dict__ for t in TARGETS],
            "sizes": [{**r, "table": r["table"].splitlines()} for r in reports],
        }
        for r in result["sizes"]:
            del r["machine"]
        path = write_results(result)
        print(f"\nwritten: {path.relative_to(ROOT)} and bench/results/latest.json")
        if failed_races:
            print(f"bench: FAILED: a race ended without exactly one winner at {failed_races}")
            return 1
        log("done")
        return 0
    except BaseException as exc:
        what = "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "failed"
        log(f"{what}: {exc!r}; cleaning up")
        servers = [item for item in cleanup if isinstance(item, Server)]
        if servers and what == "failed" and servers[-1].proc:
            server = servers[-1]
            print(
                f"{server.kind} log ({server.logfile}), last lines:\n{server.tail()}",
                file=sys.stderr,
            )
        raise
    finally:
        for item in reversed(cleanup):
            if isinstance(item, Server):
                item.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for item in cleanup:
            if not isinstance(item, Database) or not item.created:
                continue
            if cfg.keep_db:
                print(f"bench: kept the database: DATABASE_URL={item.url}", file=sys.stderr)
                continue
            try:
                item.drop()
            except Exception as exc:
                print(f"bench: could not drop {item.name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
