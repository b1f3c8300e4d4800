"""The hot queries' plans: EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) in the benchmark database.

The SQL is what the real code path sent, captured in-process (bench.run.profile_requests, with
Django's CaptureQueriesContext: statements with their values inlined), so the plans follow the
code as it changes. Every SELECT of a request is explained inside a transaction that is rolled
back; the request's main query is the one PostgreSQL estimates costliest. A sequential scan of
one of the big tables (FLAGGED) in any of them is flagged: at 1M issues it is the query that
stops scaling.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

# The tables that grow with the installation: a Seq Scan on one of them in a hot query is a bug.
FLAGGED = ("issues_issue", "companies_activityevent", "issues_event")
OPTIONS = "ANALYZE, BUFFERS, FORMAT JSON"


def nodes(plan: dict[str, Any]):
    """Every node of a plan, depth first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def outline(plan: dict[str, Any]) -> str:
    """One line of a plan: `Limit(Sort(Index Scan using ix on issues_issue))`."""
    label = plan["Node Type"]
    if plan.get("Index Name"):
        label += f" using {plan['Index Name']}"
    if plan.get("Relation Name"):
        label += f" on {plan['Relation Name']}"
    children = plan.get("Plans", ())
    if children:
        label += "(" + ", ".join(outline(c) for c in children) + ")"
    return label


def seq_scans(plan: dict[str, Any]) -> list[str]:
    return sorted(
        {
            n["Relation Name"]
            for n in nodes(plan)
            if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in FLAGGED
        }
    )


def _explained(sql_text: str, result: list[dict[str, Any]]) -> dict[str, Any]:
    top = result[0]
    plan = top["Plan"]
    return {
        "sql": sql_text,
        "outline": outline(plan),
        "estimated_cost": plan.get("Total Cost"),
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
        "shared_buffers_hit": plan.get("Shared Hit Blocks"),
        "shared_buffers_read": plan.get("Shared Read Blocks"),
        "seq_scans_flagged": seq_scans(plan),
        "plan": top,
    }


def _explain(conn: psycopg.Connection, sql_text: str, params=None) -> list[dict[str, Any]]:
    row = conn.execute(f"EXPLAIN ({OPTIONS}) {sql_text}", params).fetchone()
    value = row[0]
    return json.loads(value) if isinstance(value, str) else value


def is_select(statement: str | None) -> bool:
    text = (statement or "").lstrip().upper()
    return text.startswith(("SELECT", "WITH")) and text.rstrip(" ;") != "SELECT 1"


def explain_request(url: str, statements: list[str]) -> dict[str, Any]:
    """EXPLAIN every SELECT a request sent; answers them, the main one, and the flagged scans."""
    explained: list[dict[str, Any]] = []
    with psycopg.connect(url) as conn:
        for statement in statements:
            if not is_select(statement):
                continue
            try:
                explained.append(_explained(statement, _explain(conn, statement)))
            except psycopg.Error as exc:
                explained.append({"sql": statement, "error": str(exc).strip()})
            conn.rollback()
    planned = [e for e in explained if "plan" in e]
    main = max(planned, key=lambda e: e["estimated_cost"] or 0, default=None)
    return {
        "main": main,
        "queries": explained,
        "seq_scans_flagged": sorted({t for e in planned for t in e["seq_scans_flagged"]}),
        "errors": [e["error"] for e in explained if "error" in e],
    }


def explain_update(url: str, update_sql: str, params: list[Any]) -> dict[str, Any]:
    """EXPLAIN ANALYZE the checkout's conditional UPDATE on a real claimable issue, rolled back."""
    with psycopg.connect(url) as conn:
        try:
            main = _explained(update_sql, _explain(conn, update_sql, params))
        finally:
            conn.rollback()
    return {
        "main": main,
        "queries": [main],
        "seq_scans_flagged": main["seq_scans_flagged"],
        "errors": [],
    }
