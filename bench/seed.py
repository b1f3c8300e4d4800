"""Fill the benchmark database fast: model instances, written with PostgreSQL's COPY.

Rows are built as ordinary model instances (so every column gets the value Django would give
it) and written with one COPY per table instead of INSERTs. Import this module only after
`django.setup()`.

The shape, for 100,000 issues (deterministic for a given seed):

- 4 companies holding 40 / 25 / 20 / 15 % of the issues, each `issue_counter` matching.
- Per company a CEO, a CTO and engineers reporting to the CTO (12 agents in the first company,
  10 of which are the benchmark's agents), every agent with one API key and 20 finished runs.
- 4 projects and 2 goals per company; 80 % of issues in a project, 30 % towards a goal.
- Statuses: done 30 %, cancelled 4 %, in_review 3 %, in_progress 0.6 %, blocked 0.5 %,
  todo 35 %, backlog 26.9 %. Finished, in-review, in-progress and blocked issues have an agent
  assignee; in-progress ones hold a (stale) lock of one of that agent's finished runs; 2 % of
  todo issues are assigned. Each benchmark agent's inbox (todo, in_progress, blocked assigned to
  it) has INBOX_ROWS = 56 rows at every size (the first company's other open work goes to its
  CEO and CTO), and the unassigned todo/backlog issues are what the benchmark checks out.
- One `issue.created` activity row per issue, so the activity table and its indexes have the
  size a real installation would have.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import JSONField, Model
from ulid import ULID

from agents.models import Agent, AgentApiKey, HeartbeatRun
from companies.models import ActivityEvent, Company, hash_token, new_secret
from issues.models import Goal, Issue, Priority, Project, Status

COMPANY_SHARES = (0.40, 0.25, 0.20, 0.15)
COMPANY_NAMES = ("Bench Alpha", "Bench Beta", "Bench Gamma", "Bench Delta")
COMPANY_PREFIXES = ("BNA", "BNB", "BNC", "BND")
OTHER_AGENTS = (10, 8, 6, 6)  # engineers besides the CEO and CTO, per company
RUNS_PER_AGENT = 20

STATUS_WEIGHTS = {
    Status.DONE: 30.0,
    Status.CANCELLED: 4.0,
    Status.IN_REVIEW: 3.0,
    Status.IN_PROGRESS: 0.6,
    Status.BLOCKED: 0.5,
    Status.TODO: 35.0,
    Status.BACKLOG: 26.9,
}
PRIORITY_WEIGHTS = {
    Priority.CRITICAL: 5,
    Priority.HIGH: 20,
    Priority.MEDIUM: 50,
    Priority.LOW: 25,
}
TODO_ASSIGNED_SHARE = 0.02
# An agent's inbox: what the inbox list asks for (todo, in_progress, blocked assigned to it).
INBOX_STATUSES = (Status.TODO, Status.IN_PROGRESS, Status.BLOCKED)
INBOX_ROWS = 56  # per benchmark agent, at every size (issue 15's "~56 rows")
WORDS = (
    "refactor",
    "billing",
    "export",
    "flaky",
    "test",
    "onboarding",
    "email",
    "webhook",
    "retries",
    "dashboard",
    "latency",
    "cache",
    "invalidation",
    "search",
    "index",
    "migration",
    "audit",
    "log",
    "pricing",
    "page",
    "docs",
    "typo",
    "release",
    "notes",
    "customer",
    "report",
    "memory",
    "leak",
    "rate",
    "limit",
    "sso",
    "login",
    "mobile",
    "layout",
    "invoice",
    "pdf",
    "queue",
)


def _id(prefix: str, at: datetime) -> str:
    """A prefixed ULID whose time part is `at`, so ids sort like the seeded timestamps."""
    return f"{prefix}_{str(ULID.from_datetime(at)).lower()}"


@dataclass
class BenchAgent:
    id: str
    name: str
    company_id: str
    token: str
    run_id: str | None = None  # set by the driver once the run is started over HTTP


@dataclass
class Seeded:
    companies: list[dict] = field(default_factory=list)
    agents: list[BenchAgent] = field(default_factory=list)  # the benchmark's agents
    # Unassigned todo/backlog issue ids of the benchmark company (checked out over HTTP) and of
    # the other companies (claimed by the raw UPDATE loop), shuffled.
    claimable: list[str] = field(default_factory=list)
    claimable_elsewhere: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def copy_rows(model: type[Model], rows: Iterable[dict[str, Any]]) -> int:
    """Write rows (dicts keyed by field attname) with COPY; answers the row count.

    Every concrete column is written: a key missing from a row takes the field's default
    (computed once), so rows need to name only what differs from the model's defaults.
    """
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    names = [f.attname for f in fields]
    defaults = {f.attname: None if f.primary_key else f.get_default() for f in fields}
    json_fields = {f.attname: f.encoder for f in fields if isinstance(f, JSONField)}
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = {**defaults, **row}
            for name, encoder in json_fields.items():
                values[name] = json.dumps(values[name], cls=encoder or DjangoJSONEncoder)
            copy.write_row([values[name] for name in names])
            count += 1
    return count


def _weighted(rng: random.Random, weights: dict) -> Callable[[], object]:
    population, cum = list(weights), []
    total = 0.0
    for w in weights.values():
        total += w
        cum.append(total)
    return lambda: rng.choices(population, cum_weights=cum)[0]


def seed(*, issues: int = 100_000, bench_agents: int = 10, rng_seed: int = 42, log=print) -> Seeded:
    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    out = Seeded()
    started = time.perf_counter()
    pick_status = _weighted(rng, STATUS_WEIGHTS)
    pick_priority = _weighted(rng, PRIORITY_WEIGHTS)
    pick_inbox_status = _weighted(rng, {s: STATUS_WEIGHTS[s] for s in INBOX_STATUSES})
    bench_ids: list[str] = []  # filled with the benchmark agents' ids below

    companies, agents, keys, runs, projects, goals = [], [], [], [], [], []
    staff_of: dict[str, list[str]] = {}  # company id -> agent ids, CEO first
    runs_of: dict[str, list[dict]] = {}  # agent id -> its finished runs
    sizes = [round(issues * share) for share in COMPANY_SHARES]
    sizes[0] += issues - sum(sizes)
    founded = now - timedelta(days=400)
    for c, (name, prefix, size) in enumerate(
        zip(COMPANY_NAMES, COMPANY_PREFIXES, sizes, strict=True)
    ):
        cid = _id("cmp", founded + timedelta(seconds=c))
        companies.append(
            {
                "id": cid,
                "name": name,
                "issue_prefix": prefix,
                "issue_counter": size,
                "created_at": founded,
                "updated_at": founded,
            }
        )
        ceo, cto = _id("agt", founded), _id("agt", founded + timedelta(seconds=1))
        staff = [
            {"id": ceo, "name": "CEO", "role": Agent.Role.CEO, "reports_to_id": None},
            {"id": cto, "name": "CTO", "role": Agent.Role.CTO, "reports_to_id": ceo},
        ]
        for i in range(OTHER_AGENTS[c]):
            bench = c == 0 and i < bench_agents
            staff.append(
                {
                    "id": _id("agt", founded + timedelta(days=1 + i)),
                    "name": f"Bench Agent {i + 1:02d}" if bench else f"Engineer {i + 1:02d}",
                    "role": Agent.Role.ENGINEER,
                    "reports_to_id": cto,
                }
            )
        staff_of[cid] = [a["id"] for a in staff]
        for agent in staff:
            agents.append(
                {
                    **agent,
                    "company_id": cid,
                    "last_heartbeat_at": now - timedelta(hours=rng.randint(1, 48)),
                    "created_at": founded,
                    "updated_at": founded,
                }
            )
            token = new_secret("pcp_")
            keys.append(
                {
                    "id": _id("key", founded),
                    "agent_id": agent["id"],
                    "token_hash": hash_token(token),
                    "token_prefix": token[:12],
                    "created_at": founded,
                }
            )
            if agent["name"].startswith("Bench Agent"):
                out.agents.append(BenchAgent(agent["id"], agent["name"], cid, token))
                bench_ids.append(agent["id"])
            agent_runs = []
            for r in range(RUNS_PER_AGENT):
                at = now - timedelta(days=RUNS_PER_AGENT - r, minutes=rng.randint(0, 600))
                agent_runs.append(
                    {
                        "id": _id("run", at),
                        "company_id": cid,
                        "agent_id": agent["id"],
                        "status": HeartbeatRun.Status.SUCCEEDED,
                        "invocation_source": HeartbeatRun.Source.TIMER,
                        "wake_reason": "timer",
                        "created_at": at,
                        "started_at": at,
                        "finished_at": at + timedelta(minutes=rng.randint(1, 30)),
                        "lease_expires_at": at + timedelta(minutes=5),
                        "exit_reason": "succeeded",
                    }
                )
            runs_of[agent["id"]] = agent_runs
            runs.extend(agent_runs)
        for p in range(4):
            projects.append(
                {
                    "id": _id("prj", founded),
                    "company_id": cid,
                    "name": f"Project {p + 1}",
                    "created_at": founded,
                    "updated_at": founded,
                }
            )
        for g in range(2):
            goals.append(
                {
                    "id": _id("gol", founded),
                    "company_id": cid,
                    "title": f"Goal {g + 1}",
                    "created_at": founded,
                    "updated_at": founded,
                }
            )

    created_rows: list[tuple] = []  # for the activity rows

    def issue_rows():
        for company, size in zip(companies, sizes, strict=True):
            cid, prefix = company["id"], company["issue_prefix"]
            staff = staff_of[cid]
            company_projects = [p["id"] for p in projects if p["company_id"] == cid]
            company_goals = [g["id"] for g in goals if g["company_id"] == cid]
            # The benchmark agents' inboxes hold INBOX_ROWS issues each at every size, so the
            # inbox reads return the same rows at 10k and 100k: what grows is the table.
            inbox_of: dict[int, str] = {}
            others = [a for a in staff if a not in bench_ids]
            if cid == companies[0]["id"] and bench_ids:
                k = min(INBOX_ROWS * len(bench_ids), size // 3)
                numbers = rng.sample(range(1, size + 1), k)
                inbox_of = {n: bench_ids[i % len(bench_ids)] for i, n in enumerate(numbers)}
            for number in range(1, size + 1):
                created = now - timedelta(seconds=rng.randint(3600, 180 * 86400))
                updated = min(created + timedelta(seconds=rng.randint(0, 30 * 86400)), now)
                assignee = inbox_of.get(number)
                if assignee is not None:
                    status = pick_inbox_status()
                else:
                    status = pick_status()
                    if status in INBOX_STATUSES and inbox_of:
                        # The benchmark company's other open work goes to its other staff.
                        if status != Status.TODO or rng.random() < TODO_ASSIGNED_SHARE:
                            assignee = rng.choice(others)
                    elif status not in (Status.TODO, Status.BACKLOG) or (
                        status == Status.TODO and rng.random() < TODO_ASSIGNED_SHARE
                    ):
                        assignee = rng.choice(staff)
                words = " ".join(rng.choices(WORDS, k=5))
                iid, identifier = _id("iss", created), f"{prefix}-{number}"
                title = f"{words.capitalize()} ({number})"
                row = {
                    "id": iid,
                    "company_id": cid,
                    "number": number,
                    "identifier": identifier,
                    "title": title,
                    "description": f"Seeded by make bench. {words}. " * 4,
                    "status": status,
                    "priority": pick_priority(),
                    "assignee_agent_id": assignee,
                    "project_id": rng.choice(company_projects) if rng.random() < 0.8 else None,
                    "goal_id": rng.choice(company_goals) if rng.random() < 0.3 else None,
                    "created_by_agent_id": staff[0],
                    "created_at": created,
                    "updated_at": updated,
                }
                if status in (Status.IN_PROGRESS, Status.IN_REVIEW, Status.DONE):
                    row["started_at"] = created
                if status == Status.IN_PROGRESS:
                    holder = rng.choice(runs_of[assignee])
                    row["checkout_run_id"] = holder["id"]
                    row["execution_locked_at"] = holder["started_at"]
                elif status == Status.DONE:
                    row["completed_at"] = updated
                elif status == Status.CANCELLED:
                    row["cancelled_at"] = updated
                if status in (Status.TODO, Status.BACKLOG) and assignee is None:
                    if cid == companies[0]["id"]:
                        out.claimable.append(iid)
                    else:
                        out.claimable_elsewhere.append(iid)
                created_rows.append((iid, cid, identifier, title, status, staff[0], created))
                yield row

    def activity_rows():
        for iid, cid, identifier, title, status, author, created in created_rows:
            yield {
                "id": _id("act", created),
                "company_id": cid,
                "actor_type": "agent",
                "actor_id": author,
                "action": "issue.created",
                "entity_type": "issue",
                "entity_id": iid,
                "issue_id": iid,
                "details": {"identifier": identifier, "title": title, "status": status},
                "created_at": created,
            }

    with transaction.atomic():
        for model, rows in (
            (Company, lambda: companies),
            (Agent, lambda: agents),
            (AgentApiKey, lambda: keys),
            (HeartbeatRun, lambda: runs),
            (Project, lambda: projects),
            (Goal, lambda: goals),
            (Issue, issue_rows),
            (ActivityEvent, activity_rows),
        ):
            t0 = time.perf_counter()
            n = copy_rows(model, rows())
            out.counts[model._meta.label] = n
            log(f"  {model._meta.label}: {n:,} rows ({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"  VACUUM ANALYZE ({time.perf_counter() - t0:.1f}s)")
    rng.shuffle(out.claimable)
    rng.shuffle(out.claimable_elsewhere)
    out.companies = [
        {"id": c["id"], "name": c["name"], "prefix": c["issue_prefix"], "issues": s}
        for c, s in zip(companies, sizes, strict=True)
    ]
    log(f"seeded in {time.perf_counter() - started:.1f}s")
    return out
