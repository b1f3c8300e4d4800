"""Real app servers for the tests that need other processes on the test database.

granian serves `paperclip.wsgi` as production starts it (DEBUG off); its database sessions are
named (`application_name`) so they can be waited for once it stops. Used by
tests/test_two_servers.py and tests/test_faults.py (PostgreSQL only: pytest-django's SQLite test
database is in memory, private to the test process).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.issues.test_worker_killed import worker_database_url

# The marks of a test module whose app servers are other processes: PostgreSQL only, with the
# test's rows committed so those processes see them.
SERVER_TESTS = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: the app servers are other processes, and pytest-django's "
        "SQLite test database is in memory, private to this one",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

# A cold Django start on a busy 2-core CI machine fits many times over.
START_SECONDS = 60
START_ATTEMPTS = 3  # a server that exits at once is started again on another free port
REQUEST_TIMEOUT = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status, headers (names lower-cased) and JSON body (None when the
    body is empty; the raw text, in `text`, when it is not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str = ""


@dataclass
class AppServer:
    """granian serving `paperclip.wsgi` on the test database, as production starts it, in its
    own session."""

    name: str
    log: Path
    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_offset: int = 0

    def start(self) -> None:
        command = [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--blocking-threads", "4",
            "paperclip.wsgi:application",
        ]  # fmt: skip
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=django_settings.BASE_DIR,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def wait_healthy(self, deadline: float) -> bool:
        """Poll `/api/health` until it answers 200 (True), or the server exits (False: the port
        may have been taken since it was picked), or fail at `deadline`."""
        assert self.process is not None
        while self.process.poll() is None:
            with contextlib.suppress(OSError):
                if self.call("GET", "/api/health", timeout=2).status == 200:
                    return True
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not answer /api/health in {START_SECONDS}s:\n{self.tail()}"
                )
            time.sleep(0.1)
        return False

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Answer:
        """One request on a fresh connection, as an agent's HTTP client sends it."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            client.request(method, path, body=data, headers=sent)
            response = client.getresponse()
            raw = response.read()
            answered = {name.lower(): value for name, value in response.getheaders()}
        finally:
            client.close()
        text = raw.decode(errors="replace")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Answer(response.status, answered, parsed, text)

    def worker_pids(self) -> list[int]:
        """The worker processes granian started (children of its master process)."""
        assert self.process is not None
        pids = []
        for children in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in children.read_text().split()]
        return sorted(set(pids))

    def tail(self, lines: int = 40) -> str:
        """The last lines the server logged since this test began."""
        try:
            with self.log.open("rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def mark(self) -> None:
        """A test begins: its failure shows only what the server logged from here on."""
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # granian stops its workers and exits
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a worker left behind, if any


def server_env(app_name: str, **extra: str) -> dict[str, str]:
    env = os.environ | {
        "DATABASE_URL": worker_database_url(),
        "PGAPPNAME": app_name,  # libpq's application_name
        "DEBUG": "0",
        # The same on every host, as production requires; at least 50 characters.
        "SECRET_KEY": "two-servers-" + secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PAPERCLIP_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore:No directory at",
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }
    env.pop("PAPERCLIP_AUTH_CACHE_SECONDS", None)  # the default, as production runs it
    return env


def end_sessions(app_name: str) -> None:
    """Wait for the stopped servers' database sessions to end (the test database is flushed
    and dropped after them), ending any left behind."""
    with psycopg.connect(worker_database_url(), autocommit=True) as admin:
        deadline = time.monotonic() + START_SECONDS
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        while admin.execute(query, [app_name]).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [app_name],
        )


@contextlib.contextmanager
def running(servers: Iterable[AppServer], app_name: str) -> Iterator[None]:
    """Start `servers`, wait until each answers `/api/health`, and stop them (and wait for
    their database sessions, named `app_name`, to end) when the block ends."""
    servers = list(servers)
    try:
        for server in servers:
            server.start()
        deadline = time.monotonic() + START_SECONDS
        for server in servers:
            for attempt in range(1, START_ATTEMPTS + 1):
                if server.wait_healthy(deadline):
                    break
                assert attempt < START_ATTEMPTS, (
                    f"{server.name} exited with {server.process.returncode}:\n{server.tail()}"
                )
                server.port = free_port()
                server.start()
        yield
    finally:
        for server in servers:
            server.stop()
        end_sessions(app_name)
