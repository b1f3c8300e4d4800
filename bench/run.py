"""`make bench`: Paperclip under gunicorn on a throwaway PostgreSQL database, measured over HTTP.

    url=$(scripts/pg-prepare) && export "$url" && .venv/bin/python -m bench.run

1. creates `paperclip_bench_<random>` with the role of DATABASE_URL, migrates and seeds it
   (bench/seed.py: 100,000 issues over 4 companies, agents with API keys, runs, activity);
2. starts `gunicorn paperclip.wsgi` on a free port of 127.0.0.1 the way production runs it
   (DEBUG off, persistent connections) and waits for /api/health;
3. wakes and starts one run per benchmark agent over the API (wakeup + start);
4. counts the SQL statements of a checkout and of both inbox reads (in-process, Django's
   CaptureQueriesContext on the same code path), and captures the checkout's conditional UPDATE;
5. measures, each phase bounded by a duration after a warm-up: the inbox list and inbox-lite,
   checkout on distinct issues, checkout with 10 agents racing for each issue (exactly one 200,
   nine 409s, verified), and the raw conditional UPDATE over psycopg at the same concurrency;
6. prints one table and writes bench/results/<UTC timestamp>.json and bench/results/latest.json;
7. stops gunicorn and drops the database, also on failure or Ctrl-C.

Environment knobs: BENCH_ISSUES (100000), BENCH_AGENTS (10), BENCH_SECONDS (measured seconds
per HTTP phase, 15), BENCH_RAW_SECONDS (5), BENCH_WARMUP (2), BENCH_GUNICORN (gunicorn options,
see GUNICORN_DEFAULT), BENCH_KEEP_DB=1 (keep the database and print its URL, for profiling).
"""

from __future__ import annotations

import contextlib
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.load import Client, CpuProbe, PhaseResult, Sample, machine_busy, run_phase

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# Two sync-free processes with a few threads each: see the README's Benchmark section for the
# configurations tried on the 2-core machine and why this one.
GUNICORN_DEFAULT = "--workers 2 --worker-class gthread --threads 4"
SECRET_KEY = "bench-" + secrets.token_urlsafe(50)  # settings refuse < 50 chars with DEBUG off

TARGETS = {
    "checkout_rate_per_s": 1000,
    "checkout_share_of_raw": 0.20,
    "checkout_p99_ms": 50,
    "inbox_p50_ms": 10,
}

T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"bench [{time.perf_counter() - T0:6.1f}s] {message}", flush=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


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
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
        self.created = False


# --- gunicorn ---


class Server:
    def __init__(self, database_url: str, options: str, logfile: Path):
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
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "paperclip.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            *shlex.split(self.options),
        ]

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
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError, Exception):
                status, _, _ = client.call("GET", "/api/health")
                if status == 200:
                    client.conn.close()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /api/health in {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- what a checkout costs, and its raw SQL ---


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
    template = captured["params"]
    missing = [v for v in (issue, agent, run) if v not in template]
    if missing or not captured["sql"].lstrip().upper().startswith("UPDATE"):
        raise RuntimeError(f"unexpected checkout SQL: {captured}")

    def make_params(issue_id: str, agent_id: str, run_id: str) -> list[Any]:
        now = datetime.now(UTC)
        swap = {issue: issue_id, agent: agent_id, run: run_id}
        return [now if isinstance(v, datetime) else swap.get(v, v) for v in template]

    return captured["sql"], make_params


def count_statements(seeded, issue_ids: list[str]) -> dict[str, Any]:
    """Statements per request on the real code path, in-process (Django's test client)."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    agent = seeded.agents[0]
    client = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {agent.token}")

    def capture(method: str, path: str, **extra) -> tuple[int, list[str]]:
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(client, method)(path, **extra)
        return response.status_code, [q["sql"] for q in ctx.captured_queries]

    checkouts = []
    for iid in issue_ids:
        status, queries = capture(
            "post",
            f"/api/issues/{iid}/checkout",
            data={},
            content_type="application/json",
            HTTP_X_PAPERCLIP_RUN_ID=agent.run_id,
        )
        checkouts.append({"status": status, "statements": len(queries), "sql": queries})
    inbox_status, inbox = capture(
        "get",
        f"/api/companies/{agent.company_id}/issues",
        data={"assigneeAgentId": agent.id, "status": "todo,in_progress,blocked"},
    )
    lite_status, lite = capture("get", "/api/agents/me/inbox-lite")
    # With persistent connections and CONN_HEALTH_CHECKS, Django opens every request with a
    # `SELECT 1` on the raw connection, which query capture does not see (the PostgreSQL
    # statement log does): count it, so the figures are round trips as the server sees them.
    db = connection.settings_dict
    health = 1 if db.get("CONN_HEALTH_CHECKS") and db.get("CONN_MAX_AGE") else 0
    for c in checkouts:
        c["statements"] += health
    inbox = ["SELECT 1"] * health + inbox
    lite = ["SELECT 1"] * health + lite
    steady = checkouts[-1]
    steady["sql"] = ["SELECT 1"] * health + steady["sql"]
    return {
        "checkout": steady["statements"],
        "checkout_queries": _queries(steady["sql"]),
        "checkout_runs": [c["statements"] for c in checkouts],
        "checkout_statuses": [c["status"] for c in checkouts],
        "checkout_sql": [q[:300] for q in steady["sql"]],
        "inbox": len(inbox),
        "inbox_queries": _queries(inbox),
        "inbox_status": inbox_status,
        "inbox_sql": [q[:300] for q in inbox],
        "inbox_lite": len(lite),
        "inbox_lite_queries": _queries(lite),
        "inbox_lite_status": lite_status,
        "inbox_lite_sql": [q[:300] for q in lite],
        "note": "statements = every round trip to PostgreSQL in the request, BEGIN, COMMIT, "
        "SAVEPOINTs and the connection health check (SELECT 1) included; queries = the same "
        "without transaction control. Every request is one transaction (ATOMIC_REQUESTS). A "
        "run's first request in a process may add the throttled lease renewal and the key's "
        "last_used_at UPDATE.",
    }


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _queries(statements: list[str]) -> int:
    """Statements other than transaction control and the health check."""
    return sum(
        1
        for q in statements
        if q.strip() != "SELECT 1" and not q.lstrip().upper().startswith(TRANSACTION_CONTROL)
    )


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


def read_phase(clients, paths, *, duration: float, warmup: float, probe=None) -> PhaseResult:
    def make(client: Client, path: str):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            while not stop.is_set():
                t0 = time.perf_counter()
                status, _, latency = client.call("GET", path)
                samples.append((t0, latency, status))
            return samples

        return worker

    for c in clients:
        c.reset()
    rows = []
    for client, path in zip(clients, paths, strict=True):
        status, body = client.json("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        rows.append(len(body))
    result = run_phase(
        [make(c, p) for c, p in zip(clients, paths, strict=True)],
        duration=duration,
        warmup=warmup,
        probe=probe,
    )
    result.extra["rows_per_response"] = {
        "min": min(rows),
        "max": max(rows),
        "mean": round(sum(rows) / len(rows), 1),
    }
    return result


def checkout_phase(
    clients, agents, pools, *, duration: float, warmup: float, probe=None
) -> PhaseResult:
    def make(client: Client, run_id: str, pool: list[str]):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            for iid in pool:
                if stop.is_set():
                    break
                t0 = time.perf_counter()
                status, _, latency = client.call(
                    "POST", f"/api/issues/{iid}/checkout", {}, run_id=run_id
                )
                samples.append((t0, latency, status))
            return samples

        return worker

    for c in clients:
        c.reset()
    return run_phase(
        [make(c, a.run_id, p) for c, a, p in zip(clients, agents, pools, strict=True)],
        duration=duration,
        warmup=warmup,
        probe=probe,
    )


def contention_phase(
    clients, agents, pool, *, duration: float, warmup: float, probe=None
) -> PhaseResult:
    """All agents fire at the same issue at once (a barrier per issue), issue after issue."""
    n = len(clients)
    state = {"round": -1, "done": False}
    outcomes: list[list[int]] = []
    stop_ref: list[threading.Event] = []

    def advance() -> None:  # runs in one thread while the others wait at the barrier
        if (stop_ref and stop_ref[0].is_set()) or state["round"] + 1 >= len(pool):
            state["done"] = True
        else:
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
                    r = state["round"]
                    t0 = time.perf_counter()
                    status, _, latency = client.call(
                        "POST", f"/api/issues/{pool[r]}/checkout", {}, run_id=run_id
                    )
                    outcomes[r][i] = status
                    samples.append((t0, latency, status))
            except BaseException:
                barrier.abort()
                raise
            return samples

        return worker

    for c in clients:
        c.reset()
    result = run_phase(
        [make(i, c, a.run_id) for i, (c, a) in enumerate(zip(clients, agents, strict=True))],
        duration=duration,
        warmup=warmup,
        probe=probe,
    )
    good = sum(1 for o in outcomes if o.count(200) == 1 and o.count(409) == n - 1)
    result.extra["issues_raced"] = len(outcomes)
    result.extra["issues_with_exactly_one_winner"] = good
    result.extra["issues_per_s"] = round(len(result.samples) / n / result.window_s, 1)
    return result


def raw_phase(
    url, update_sql, make_params, agents, pools, *, duration, warmup, probe=None
) -> PhaseResult:
    """The checkout's UPDATE straight over psycopg: one connection per agent, autocommit."""
    conns = [psycopg.connect(url, autocommit=True) for _ in agents]

    def make(conn, agent, pool: list[str]):
        def worker(stop: threading.Event) -> list[Sample]:
            samples: list[Sample] = []
            with conn.cursor() as cur:
                for iid in pool:
                    if stop.is_set():
                        break
                    params = make_params(iid, agent.id, agent.run_id)
                    t0 = time.perf_counter()
                    cur.execute(update_sql, params)
                    samples.append((t0, time.perf_counter() - t0, cur.rowcount))
            return samples

        return worker

    try:
        result = run_phase(
            [make(c, a, p) for c, a, p in zip(conns, agents, pools, strict=True)],
            duration=duration,
            warmup=warmup,
            probe=probe,
        )
    finally:
        for c in conns:
            c.close()
    return result


# --- report ---


def machine_info(database_url: str, server: Server) -> dict[str, Any]:
    import django
    import gunicorn

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": "",
        "mem_gib": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
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
    info["gunicorn_command"] = "gunicorn paperclip.wsgi " + " ".join(server.command[4:])
    info["gunicorn_env"] = {
        k: server.env[k] for k in ("DEBUG", "ALLOWED_HOSTS", "DATABASE_CONN_MAX_AGE")
    }
    return info


def fmt(value, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def render_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'operation':<44} {'requests':>9} {'rate/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    header += f"{'share of raw':>12}"
    lines = [header, "-" * len(header)]
    for r in rows:
        share = r.get("share_of_raw")
        lines.append(
            f"{r['operation']:<44} {r['requests']:>9,} {r['rate_per_s']:>9,.1f} "
            f"{fmt(r['p50_ms'], '8.2f'):>8} {fmt(r['p99_ms'], '8.2f'):>8} "
            f"{fmt(None if share is None else share * 100, '11.1f'):>11}{'%' if share else ' '}"
        )
    return "\n".join(lines)


def check_targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    co, inbox, lite = results["checkout"], results["inbox"], results["inbox_lite"]
    checks = [
        ("checkout rate/s", co["rate_per_s"], ">=", TARGETS["checkout_rate_per_s"]),
        ("checkout share of raw", co["share_of_raw"], ">=", TARGETS["checkout_share_of_raw"]),
        ("checkout p99 ms", co["p99_ms"], "<", TARGETS["checkout_p99_ms"]),
        ("inbox p50 ms", inbox["p50_ms"], "<", TARGETS["inbox_p50_ms"]),
        ("inbox-lite p50 ms", lite["p50_ms"], "<", TARGETS["inbox_p50_ms"]),
    ]
    out = []
    for name, value, op, target in checks:
        met = value is not None and (value >= target if op == ">=" else value < target)
        out.append({"target": name, "value": value, "op": op, "goal": target, "met": met})
    return out


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


def main() -> int:
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")):
        print(
            "bench: DATABASE_URL must be a PostgreSQL URL; run `make bench`, or\n"
            '  url=$(scripts/pg-prepare) && export "$url" && .venv/bin/python -m bench.run',
            file=sys.stderr,
        )
        return 2
    issues = env_int("BENCH_ISSUES", 100_000)
    n_agents = env_int("BENCH_AGENTS", 10)
    seconds = env_float("BENCH_SECONDS", 15.0)
    raw_seconds = env_float("BENCH_RAW_SECONDS", 5.0)
    warmup = env_float("BENCH_WARMUP", 2.0)
    gunicorn_options = os.environ.get("BENCH_GUNICORN", "").strip() or GUNICORN_DEFAULT
    keep_db = os.environ.get("BENCH_KEEP_DB", "") == "1"

    # SIGTERM unwinds like Ctrl-C, so the finally below always cleans up. SIGINT is set
    # explicitly: a shell starts background jobs with it ignored, and Python keeps that.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    db = Database(base_url)
    server: Server | None = None
    ok = False
    try:
        log(f"creating database {db.name}")
        db.create()
        os.environ.update(
            DATABASE_URL=db.url,
            DATABASE_CONN_MAX_AGE="600",
            DEBUG="0",
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1,testserver",
            DJANGO_SETTINGS_MODULE="paperclip.settings",
        )
        warnings.filterwarnings("ignore", message="No directory at")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        log("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        from bench.seed import seed

        log(f"seeding {issues:,} issues")
        seeded = seed(issues=issues, bench_agents=n_agents, log=log)
        agents = seeded.agents
        n = len(agents)

        server = Server(db.url, gunicorn_options, Path(f"/tmp/{db.name}-gunicorn.log"))
        log(f"starting {server.command[2]} {' '.join(server.command[3:])}")
        server.start()
        host, port = "127.0.0.1", server.port
        start_runs(host, port, agents)
        log(f"{n} agents woke and started their runs")

        # Pools of unassigned todo/backlog issues: a few for counting, the rest split.
        claimable = seeded.claimable
        count_pool, claimable = claimable[:3], claimable[3:]
        contention_pool, claimable = claimable[:2000], claimable[2000:]
        per_agent = len(claimable) // n
        checkout_pools = [claimable[i * per_agent : (i + 1) * per_agent] for i in range(n)]
        elsewhere = seeded.claimable_elsewhere
        raw_pools = [elsewhere[i::n] for i in range(n)]

        statements = count_statements(seeded, count_pool)
        log(
            f"a checkout costs {statements['checkout']} statements "
            f"({statements['checkout_queries']} without transaction control; first ones: "
            f"{statements['checkout_runs']}), inbox {statements['inbox']}, "
            f"inbox-lite {statements['inbox_lite']}"
        )
        update_sql, make_params = capture_checkout_update()
        connections.close_all()

        clients = [Client(host, port, a.token) for a in agents]
        results: dict[str, dict[str, Any]] = {}
        probe = CpuProbe(server.proc.pid, db.name)
        idle_check = machine_busy(1.0)
        log(f"machine busy before measuring: {idle_check * 100:.0f}% of {os.cpu_count()} cores")
        if idle_check > 0.15:
            log("WARNING: something else is using the CPU; the figures will be low and noisy")

        inbox_paths = [
            f"/api/companies/{a.company_id}/issues?assigneeAgentId={a.id}"
            "&status=todo,in_progress,blocked"
            for a in agents
        ]
        log(f"inbox: {n} agents, {warmup:g}s warm-up + {seconds:g}s")
        results["inbox"] = read_phase(
            clients, inbox_paths, duration=seconds, warmup=warmup, probe=probe
        ).summary()
        log(f"inbox-lite: {n} agents, {warmup:g}s warm-up + {seconds:g}s")
        results["inbox_lite"] = read_phase(
            clients, ["/api/agents/me/inbox-lite"] * n, duration=seconds, warmup=warmup, probe=probe
        ).summary()
        log(f"checkout, distinct issues: {n} agents, {warmup:g}s warm-up + {seconds:g}s")
        results["checkout"] = checkout_phase(
            clients, agents, checkout_pools, duration=seconds, warmup=warmup, probe=probe
        ).summary()
        log(f"checkout, {n} agents racing per issue: {warmup:g}s warm-up + {seconds:g}s")
        results["checkout_contention"] = contention_phase(
            clients, agents, contention_pool, duration=seconds, warmup=warmup, probe=probe
        ).summary()
        for c in clients:
            c.conn.close()
        log(f"raw conditional UPDATE: {n} psycopg connections, 1s warm-up + {raw_seconds:g}s")
        raw = raw_phase(
            db.url,
            update_sql,
            make_params,
            agents,
            raw_pools,
            duration=raw_seconds,
            warmup=1.0,
            probe=probe,
        ).summary()
        raw["statuses"] = {f"rowcount={k}": v for k, v in raw["statuses"].items()}
        results["raw_update"] = raw

        raw_rate = raw["rate_per_s"] or None
        for key in ("checkout", "checkout_contention"):
            results[key]["share_of_raw"] = (
                round(results[key]["rate_per_s"] / raw_rate, 4) if raw_rate else None
            )
        raw["share_of_raw"] = 1.0
        labels = {
            "checkout": f"checkout, {n} agents, distinct issues",
            "checkout_contention": f"checkout, {n} agents racing (1 winner)",
            "inbox": "inbox GET issues?assigneeAgentId&status",
            "inbox_lite": "inbox-lite GET agents/me/inbox-lite",
            "raw_update": f"raw conditional UPDATE, psycopg x{n}",
        }
        rows = [{"operation": labels[k], **results[k]} for k in labels]
        table = render_table(rows)
        targets = check_targets(results)
        report = {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(db.url, server),
            "config": {
                "issues": issues,
                "agents": n,
                "seconds_per_phase": seconds,
                "raw_seconds": raw_seconds,
                "warmup_seconds": warmup,
                "gunicorn_options": gunicorn_options,
                "seeded_rows": seeded.counts,
                "companies": seeded.companies,
            },
            "results": rows,
            "statements": statements,
            "raw_update_sql": update_sql,
            "targets": targets,
            "machine_busy_before_pct": round(idle_check * 100, 1),
            "table": table.splitlines(),
        }
        path = write_results(report)

        contention = results["checkout_contention"]
        print()
        print(table)
        print()
        print(
            f"checkout: {statements['checkout']} statements to PostgreSQL per request "
            f"({statements['checkout_queries']} queries + health check, BEGIN/COMMIT, "
            "SAVEPOINTs), one "
            f"transaction; inbox {statements['inbox']}, inbox-lite {statements['inbox_lite']}; "
            f"statuses {results['checkout']['statuses']}"
        )
        raced, won = contention["issues_raced"], contention["issues_with_exactly_one_winner"]
        print(
            f"contention: {won} of {raced} issues had exactly one 200 and {n - 1} 409s "
            f"({contention['issues_per_s']} issues/s); statuses {contention['statuses']}"
            + ("" if won == raced else "  <-- FAILED: every race must end 1 x 200 + 409s")
        )
        print(
            f"inbox rows per response: {results['inbox']['rows_per_response']}, "
            f"inbox-lite: {results['inbox_lite']['rows_per_response']}"
        )
        print(
            f"CPU: % of {os.cpu_count()} cores, and ms per request (app = gunicorn, db = this "
            "database's backends, client = this load generator, other = the rest of the machine)"
        )
        for key, label in labels.items():
            pct, per = results[key]["cpu_pct"], results[key]["cpu_ms_per_request"]
            print(
                f"  {label:<44} "
                + "  ".join(f"{k} {v:4.0f}%" for k, v in pct.items())
                + "   per request: "
                + "  ".join(f"{k} {v:.2f}" for k, v in per.items() if v is not None)
            )
        for t in targets:
            print(
                f"target {t['target']} {t['op']} {t['goal']}: {t['value']} "
                f"{'met' if t['met'] else 'MISSED'}"
            )
        print(f"\nwritten: {path.relative_to(ROOT)} and bench/results/latest.json")
        log("done")
        ok = True
        return 0
    except BaseException as exc:
        what = "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "failed"
        log(f"{what}: {exc!r}; cleaning up")
        if server is not None and what == "failed":
            print(f"gunicorn log ({server.logfile}), last lines:\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.stop()
            if ok:
                server.logfile.unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if keep_db:
            print(f"bench: kept the database: DATABASE_URL={db.url}", file=sys.stderr)
        else:
            try:
                db.drop()
            except Exception as exc:
                print(f"bench: could not drop {db.name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
