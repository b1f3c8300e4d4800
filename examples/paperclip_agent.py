#!/usr/bin/env python3
"""An example Paperclip agent: one heartbeat, as reference 001 describes it, step by step.

Standard library only. The process adapter runs it with the wake in its environment:

    PAPERCLIP_API_URL      the server's base URL (the API is under /api)
    PAPERCLIP_API_KEY      the run token (or an agent API key, when run by hand)
    PAPERCLIP_RUN_ID       the run this heartbeat is; sent as X-Paperclip-Run-Id
    PAPERCLIP_TASK_ID      the issue the wake is about, picked first when it is ours
    PAPERCLIP_WAKE_REASON, PAPERCLIP_WAKE_COMMENT_ID, PAPERCLIP_APPROVAL_ID,
    PAPERCLIP_APPROVAL_STATUS, PAPERCLIP_LINKED_ISSUE_IDS   the rest of the wake, when it has them

The steps: 1 identity (GET /api/agents/me) · 2 approval follow-up (comment on the approval's
issues) · 3 inbox · 4 pick (PAPERCLIP_TASK_ID first, then in_progress, then todo; blocked is
skipped) · 5 checkout (a 409 is never retried: the next pick, or nothing) · 6 context (the issue,
its ancestors, its comments, the waking comment first) · 7 the work · 8 update (PATCH the status
with a comment) · 9 delegation (subtasks with parentId and goalId, when the work asks for them).
One issue per heartbeat: every wake about another issue is a run of its own.

The work is a function `work(client, issue, context) -> Outcome`; the default, `plan_work`,
writes a short plan document, and marks the issue done (in_review when its description asks for a
review). Plug in your own with `--work package.module:function` or `--work path/to/file.py:func`.

Everything it does is logged to stdout, which the process adapter keeps as the run's log. Exits 0
when it did its work or had none to do, 1 on anything unexpected.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CHECKOUT_STATUSES = ["todo", "backlog", "blocked"]
INBOX_STATUSES = "todo,in_progress,blocked"
COMMENTS_READ = 50
REVIEW_ASKED = re.compile(r"\breview\b", re.IGNORECASE)


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# -- the API -------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than 2xx: its status and the server's `{error, code, details}`."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method, self.path, self.status, self.body = method, path, status, body
        error = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"{method} {path} -> {status}: {error}")


class Client:
    """JSON over HTTP to `/api`, as this run: every request carries the run id, so each one is
    this run's sign of life and every write is recorded as the run's."""

    def __init__(self, base_url: str, token: str, run_id: str, timeout: float = 30):
        self.base = base_url.rstrip("/") + "/api"
        self.token, self.run_id, self.timeout = token, run_id, timeout

    def request(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        url = self.base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "X-Paperclip-Run-Id": self.run_id,
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer = json.loads(raw) if raw else None
            except ValueError:
                answer = raw.decode(errors="replace")
            raise ApiError(method, path, exc.code, answer) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, **query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)


# -- what the work gets and answers ----------------------------------------------------------


@dataclass
class Wake:
    """The wake, from the environment the process adapter sets."""

    run_id: str
    task_id: str = ""
    reason: str = ""
    comment_id: str = ""
    approval_id: str = ""
    approval_status: str = ""
    linked_issue_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Wake:
        linked = env.get("PAPERCLIP_LINKED_ISSUE_IDS", "")
        return cls(
            run_id=env["PAPERCLIP_RUN_ID"],
            task_id=env.get("PAPERCLIP_TASK_ID", ""),
            reason=env.get("PAPERCLIP_WAKE_REASON", ""),
            comment_id=env.get("PAPERCLIP_WAKE_COMMENT_ID", ""),
            approval_id=env.get("PAPERCLIP_APPROVAL_ID", ""),
            approval_status=env.get("PAPERCLIP_APPROVAL_STATUS", ""),
            linked_issue_ids=[i for i in linked.split(",") if i],
        )


@dataclass
class Context:
    """Why the issue exists and what was said about it (step 6)."""

    me: dict[str, Any]
    wake: Wake
    ancestors: list[dict[str, Any]]  # nearest first, as GET /api/issues/{id} answers them
    comments: list[dict[str, Any]]  # the waking comment first, then the rest oldest first
    wake_comment: dict[str, Any] | None


@dataclass
class Subtask:
    """An issue to create under the one worked on (step 9); parentId and goalId are set for you."""

    title: str
    description: str = ""
    assignee_agent_id: str | None = None
    priority: str | None = None


@dataclass
class Outcome:
    """What the work did: the issue's new status (done, in_review, blocked, or in_progress to
    keep it), the comment saying what was done and why, and any subtasks to create."""

    status: str
    comment: str
    subtasks: list[Subtask] = field(default_factory=list)


Work = Callable[[Client, dict[str, Any], Context], Outcome]


# -- the default work ----------------------------------------------------------------------------


def plan_work(client: Client, issue: dict[str, Any], context: Context) -> Outcome:
    """The demo's work: write (or revise) the issue's `plan` document, then finish the issue:
    in_review when its description asks for a review, done otherwise."""
    lines = [f"# Plan: {issue['identifier']} {issue['title']}", ""]
    if context.ancestors:
        lines += ["## Why", ""]
        lines += [f"- part of {a['identifier']} {a['title']}" for a in context.ancestors]
        lines.append("")
    if context.wake_comment:
        lines += ["## Asked for", "", context.wake_comment["body"].strip(), ""]
    lines += [
        "## Steps",
        "",
        "1. Read the issue and its context.",
        "2. Do the smallest change that meets it.",
        "3. Report what was done on the issue.",
        "",
    ]
    if (issue.get("description") or "").strip():
        lines += ["## The issue says", "", issue["description"].strip(), ""]
    body = {
        "title": "Plan",
        "format": "markdown",
        "body": "\n".join(lines),
        "changeSummary": f"Plan written by {context.me['name']}",
    }
    existing = issue.get("planDocument")
    if existing:
        body["baseRevisionId"] = existing["latestRevisionId"]
    document = client.put(f"/issues/{issue['id']}/documents/plan", body)
    log(f"work: wrote the plan document (revision {document['revisionNumber']})")

    review = bool(REVIEW_ASKED.search(issue.get("description") or ""))
    status = "in_review" if review else "done"
    comment = (
        f"Wrote the plan document (revision {document['revisionNumber']}) and marked this "
        f"{'in review, as the description asks' if review else 'done'}. "
        f"(run {context.wake.run_id})"
    )
    return Outcome(status=status, comment=comment)


def load_work(spec: str) -> Work:
    """`package.module:function` (importable) or `path/to/file.py:function`."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise SystemExit(f"--work {spec!r}: expected module:function or file.py:function")
    if target.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location("paperclip_work", target)
        if module_spec is None or module_spec.loader is None:
            raise SystemExit(f"--work {spec!r}: cannot load {target}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, name)


# -- the heartbeat -------------------------------------------------------------------------------


class Heartbeat:
    def __init__(self, client: Client, wake: Wake, work: Work):
        self.client, self.wake, self.work = client, wake, work

    def run(self) -> int:
        me = self.identity()
        self.approval_follow_up()
        for issue in self.picks(me):
            if self.checkout(me, issue):
                self.work_on(me, issue)
                return 0
        log("nothing to do: no issue could be checked out")
        return 0

    # 1
    def identity(self) -> dict[str, Any]:
        me = self.client.get("/agents/me")
        log(f"identity: {me['name']} ({me['role']}), agent {me['id']}, company {me['companyId']}")
        run = self.client.get(f"/heartbeat-runs/{self.wake.run_id}")
        if run["status"] == "queued":  # run by hand: nobody started it for us
            self.client.post(f"/heartbeat-runs/{self.wake.run_id}/start")
            log(f"run {self.wake.run_id}: started")
        log(f"run {self.wake.run_id}: wake reason {self.wake.reason or '-'}")
        return me

    # 2
    def approval_follow_up(self) -> None:
        if not self.wake.approval_id:
            return
        approval = self.client.get(f"/approvals/{self.wake.approval_id}")
        issues = self.client.get(f"/approvals/{self.wake.approval_id}/issues")
        status = self.wake.approval_status or approval["status"]
        log(f"approval {approval['id']} ({approval['type']}): {status}, {len(issues)} issue(s)")
        for issue in issues:
            body = (
                f"Approval {approval['id']} ({approval['type']}) is {status}"
                + (f": {approval['decisionNote']}" if approval.get("decisionNote") else ".")
                + f" This issue stays open for its assignee to carry on. (run {self.wake.run_id})"
            )
            try:
                self.client.post(f"/issues/{issue['id']}/comments", {"body": body})
                log(f"approval: commented on {issue['identifier']}")
            except ApiError as exc:
                if exc.status >= 500:
                    raise
                log(f"approval: could not comment on {issue['identifier']}: {exc}")

    # 3 + 4
    def picks(self, me: dict[str, Any]) -> list[dict[str, Any]]:
        inbox = self.client.get(
            f"/companies/{me['companyId']}/issues",
            assigneeAgentId=me["id"],
            status=INBOX_STATUSES,
        )
        log(f"inbox: {len(inbox)} issue(s)" + "".join(f" {i['identifier']}" for i in inbox))
        workable = [i for i in inbox if i["status"] != "blocked"]
        # Sorted by priority already; stable sorts keep that order inside each group.
        workable.sort(key=lambda i: i["status"] != "in_progress")
        workable.sort(key=lambda i: i["id"] != self.wake.task_id)
        for issue in inbox:
            if issue["status"] == "blocked":
                log(f"pick: skipping {issue['identifier']} (blocked)")
        return workable

    # 5
    def checkout(self, me: dict[str, Any], issue: dict[str, Any]) -> bool:
        expected = CHECKOUT_STATUSES + (["in_progress"] if issue["status"] == "in_progress" else [])
        try:
            self.client.post(
                f"/issues/{issue['id']}/checkout",
                {"agentId": me["id"], "expectedStatuses": expected},
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            details = exc.body.get("details") if isinstance(exc.body, dict) else None
            log(f"checkout: {issue['identifier']} -> 409, not retrying ({exc}; {details})")
            return False
        log(f"checkout: {issue['identifier']} is ours ({issue['title']})")
        return True

    # 6 + 7 + 8 + 9
    def work_on(self, me: dict[str, Any], picked: dict[str, Any]) -> None:
        issue = self.client.get(f"/issues/{picked['id']}")
        context = self.context(me, issue)
        try:
            outcome = self.work(self.client, issue, context)
        except Exception:
            log("work: failed\n" + traceback.format_exc())
            self.client.post(
                f"/issues/{issue['id']}/comments",
                {"body": f"The work failed; see the log of run {self.wake.run_id}."},
            )
            raise
        created = [self.delegate(me, issue, subtask) for subtask in outcome.subtasks]
        comment = outcome.comment
        if created:
            comment += "\n\nSubtasks: " + ", ".join(s["identifier"] for s in created)
        change: dict[str, Any] = {"comment": comment}
        if outcome.status != issue["status"]:
            change["status"] = outcome.status
        updated = self.client.patch(f"/issues/{issue['id']}", change)
        log(f"update: {updated['identifier']} is {updated['status']}; commented")

    def context(self, me: dict[str, Any], issue: dict[str, Any]) -> Context:
        ancestors = issue.get("ancestors") or []
        for ancestor in ancestors:
            log(f"context: part of {ancestor['identifier']} {ancestor['title']}")
        newest = self.client.get(
            f"/issues/{issue['id']}/comments", order="desc", limit=str(COMMENTS_READ)
        )
        comments = list(reversed(newest))
        wake_comment = None
        if self.wake.comment_id:
            wake_comment = next((c for c in comments if c["id"] == self.wake.comment_id), None)
            try:
                wake_comment = wake_comment or self.client.get(
                    f"/issues/{issue['id']}/comments/{self.wake.comment_id}"
                )
            except ApiError as exc:  # a comment on another issue woke us
                if exc.status != 404:
                    raise
            if wake_comment:
                comments = [wake_comment] + [c for c in comments if c["id"] != wake_comment["id"]]
                log(f"context: woken by comment {wake_comment['id']}: {wake_comment['body']!r}")
        log(f"context: {issue['identifier']} has {len(comments)} comment(s) read")
        return Context(
            me=me,
            wake=self.wake,
            ancestors=ancestors,
            comments=comments,
            wake_comment=wake_comment,
        )

    def delegate(self, me: dict[str, Any], parent: dict[str, Any], task: Subtask) -> dict:
        """Step 9: a subtask always names its parent and goal."""
        body: dict[str, Any] = {
            "title": task.title,
            "description": task.description,
            "parentId": parent["id"],
            "goalId": parent.get("goalId"),
        }
        if task.assignee_agent_id:
            body["assigneeAgentId"] = task.assignee_agent_id
        if task.priority:
            body["priority"] = task.priority
        created = self.client.post(f"/companies/{me['companyId']}/issues", body)
        log(f"delegate: created {created['identifier']} {created['title']}")
        return created


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work",
        metavar="MODULE:FUNCTION",
        help="the work function, work(client, issue, context) -> Outcome (default: plan_work)",
    )
    parser.add_argument(
        "--finish-run",
        action="store_true",
        help="finish the run when done (for runs started by hand; the process adapter "
        "finishes it from the exit code)",
    )
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    missing = [
        name
        for name in ("PAPERCLIP_API_URL", "PAPERCLIP_API_KEY", "PAPERCLIP_RUN_ID")
        if not env.get(name)
    ]
    if missing:
        log(f"missing in the environment: {', '.join(missing)}")
        return 2
    wake = Wake.from_env(env)
    client = Client(env["PAPERCLIP_API_URL"], env["PAPERCLIP_API_KEY"], wake.run_id)
    work = load_work(args.work) if args.work else plan_work
    try:
        status = Heartbeat(client, wake, work).run()
    except ApiError as exc:
        log(f"unexpected answer: {exc}; {exc.body}")
        status = 1
    except Exception:
        log("unexpected error:\n" + traceback.format_exc())
        status = 1
    if args.finish_run:
        outcome = "succeeded" if status == 0 else "failed"
        client.post(f"/heartbeat-runs/{wake.run_id}/finish", {"status": outcome})
        log(f"run {wake.run_id}: finished, {outcome}")
    log(f"exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
