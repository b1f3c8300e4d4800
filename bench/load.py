"""The load generator: one thread per agent, each with its own keep-alive HTTP connection.

Threads with `http.client` are the leanest client Python has: the interpreter lock is released
while a thread waits on its socket, so 10 threads cost the server little CPU on a 2-core box.
Every sample is (start, latency, status); a phase keeps only those that started after its
warm-up.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Sample = tuple[float, float, int]  # start (perf_counter), latency (s), HTTP status or 0


class Client:
    """One agent's connection. Reconnects by itself when the server closed it (sync workers)."""

    def __init__(self, host: str, port: int, token: str | None = None, timeout: float = 30.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.last_headers: http.client.HTTPMessage | None = None  # of the last response

    def reset(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        run_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, float]:
        headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if run_id:
            headers["X-Paperclip-Run-Id"] = run_id
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
            self.last_headers = response.headers
        except (OSError, http.client.HTTPException):
            self.reset()
            raise
        return response.status, payload, time.perf_counter() - t0

    def json(self, method: str, path: str, body: Any = None, run_id: str | None = None):
        status, payload, _ = self.call(method, path, body, run_id)
        return status, (json.loads(payload) if payload else None)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
NCPU = os.cpu_count() or 1


def _proc_cpu(pid: int | str) -> float:
    """CPU seconds (user + system) a process has used, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuProbe:
    """Where the CPU goes: the app server's tree, the database's backends, and this process.

    Backends are found by their process title (`postgres: ... <role> <database> ...`), so
    this needs to run on the database's machine as a user that may read /proc (root here).
    """

    def __init__(self, server_pid: int | None, database: str):
        self.server_pid, self.database = server_pid, database

    def sample(self) -> dict[str, float]:
        app = 0.0
        if self.server_pid:
            app = _proc_cpu(self.server_pid) + sum(_proc_cpu(c) for c in children(self.server_pid))
        db = 0.0
        needle = f" {self.database} ".encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read()
            except OSError:
                continue
            if title.startswith(b"postgres:") and needle in title:
                db += _proc_cpu(pid)
        return {"app": app, "db": db, "client": time.process_time()}


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over the next `seconds` (0..1): is the machine idle?"""
    a = _cpu_times()
    time.sleep(seconds)
    b = _cpu_times()
    return (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] else 0.0


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            values = [float(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


@dataclass
class PhaseResult:
    samples: list[Sample]
    window_s: float
    machine_busy: float  # share of all cores busy during the phase (0..1)
    cpu_wall_s: float  # the wall time the CPU counters cover
    cpu_s: dict[str, float]  # CPU seconds per consumer: app, db, client, other
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def statuses(self) -> dict[str, int]:
        return {str(k): v for k, v in sorted(Counter(s[2] for s in self.samples).items())}

    def summary(self) -> dict[str, Any]:
        latencies = sorted(s[1] for s in self.samples)
        n = len(latencies)
        return {
            "requests": n,
            "seconds": round(self.window_s, 3),
            "rate_per_s": round(n / self.window_s, 1) if self.window_s > 0 else 0.0,
            "p50_ms": round(percentile(latencies, 50) * 1000, 2) if n else None,
            "p99_ms": round(percentile(latencies, 99) * 1000, 2) if n else None,
            "max_ms": round(latencies[-1] * 1000, 2) if n else None,
            "statuses": self.statuses,
            "machine_cpu_busy_pct": round(self.machine_busy * 100, 1),
            # Shares of all cores, and CPU milliseconds per request: the latter hardly depends
            # on what else runs on the machine, so it compares runs on a busy machine.
            "cpu_pct": {
                k: round(v / (self.cpu_wall_s * NCPU) * 100, 1) for k, v in self.cpu_s.items()
            },
            "cpu_ms_per_request": {
                k: round(v / n * 1000, 3) if n else None
                for k, v in self.cpu_s.items()
                if k != "other"
            },
            **self.extra,
        }


def run_phase(
    workers: list[Callable[[threading.Event], list[Sample]]],
    *,
    duration: float,
    warmup: float,
    probe: CpuProbe | None = None,
) -> PhaseResult:
    """Run each worker in a thread until `warmup + duration` seconds passed (or it ran out of
    work); keep the samples that started after the warm-up."""
    stop = threading.Event()
    results: list[list[Sample]] = [[] for _ in workers]
    errors: list[BaseException] = []

    def target(i: int, worker) -> None:
        try:
            results[i] = worker(stop)
        except BaseException as exc:  # reported after the phase
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=target, args=(i, w), daemon=True) for i, w in enumerate(workers)
    ]
    try:
        for t in threads:
            t.start()
        time.sleep(warmup)
        measure_from = time.perf_counter()
        cpu0 = _cpu_times()
        use0 = probe.sample() if probe else {"client": time.process_time()}
        deadline = measure_from + duration
        while time.perf_counter() < deadline and any(t.is_alive() for t in threads):
            time.sleep(0.05)
    finally:
        stop.set()
    for t in threads:
        t.join()
    cpu1 = _cpu_times()
    use1 = probe.sample() if probe else {"client": time.process_time()}
    if errors:
        raise errors[0]
    samples = [s for r in results for s in r if s[0] >= measure_from]
    end = max((s[0] + s[1] for s in samples), default=measure_from)
    window = max(end - measure_from, 1e-9)
    busy = (cpu1[0] - cpu0[0]) / (cpu1[1] - cpu0[1]) if cpu1[1] > cpu0[1] else 0.0
    wall = (cpu1[1] - cpu0[1]) / TICK / NCPU or window
    cpu_s = {k: use1[k] - use0[k] for k in use1}
    cpu_s["other"] = max(0.0, busy * wall * NCPU - sum(cpu_s.values()))
    return PhaseResult(
        samples=samples, window_s=window, machine_busy=busy, cpu_wall_s=wall, cpu_s=cpu_s
    )


def children(pid: int) -> list[int]:
    """The direct children of a process (every thread's), from /proc."""
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def worker_rss(server_pid: int) -> dict[int, int]:
    """Resident memory (VmRSS, KiB) of each app worker: the server master's children.

    Helpers a master may start beside its workers (multiprocessing's resource tracker) are
    left out: they serve no request.
    """
    out: dict[int, int] = {}
    for pid in children(server_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"resource_tracker" in f.read():
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[pid] = int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return out
