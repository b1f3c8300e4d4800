"""The board's home page (DESIGN §10, §11): what needs a human now and how the company is doing.

`board_companies` says which companies a board user may look at (the admin's rule: superusers
all, others their memberships); `board_dashboard` reads one of them for the page: the API's
dashboard (`companies.dashboard.company_dashboard`) plus what a human acts on (the stale locks by
name, agents paused by their budget), the last fourteen days and eight weeks of issues, this
month's spend per agent, and the newest activity with names instead of ids. A fixed number of
queries whatever the company's size; the page's links go to the admin's filtered lists, each
only for a viewer who may open it.
Like `companies.dashboard`, it reads every app's rows, so it imports them inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone

from companies.admin import member_company_ids
from companies.dashboard import company_dashboard, utilization_percent
from companies.models import Company, User
from paperclip.board import may_open, relative_time
from paperclip.ids import parse_id

DAYS = 14  # the daily charts' window, today included
WEEKS = 8  # the throughput chart's window, in 7-day buckets ending today
STALE_LOCKS_NAMED = 5  # stale-locked issues named on the page (the count says how many in all)
AGENTS_BY_SPEND = 10  # agents in the spend chart, the biggest spenders first
SOFT_LIMIT = 80  # percent of a budget where DESIGN §10 raises the soft breach


def board_companies(user: User) -> list[Company]:
    """The companies `user` may look at on the board, by name: all for a superuser, else those
    with one of its memberships (`companies.admin.member_company_ids`, as every admin list)."""
    companies = Company.objects.order_by("name", "pk")
    if not user.is_superuser:
        companies = companies.filter(pk__in=member_company_ids(user))
    return list(companies)


def picked_company(companies: list[Company], ref: str | None) -> Company | None:
    """The company `?company=<id>` names among `companies` (the first when there is no ref);
    None when the ref names none of them, whether it is another company's or no company."""
    if not ref:
        return companies[0] if companies else None
    pk = parse_id(ref, "cmp")
    return next((company for company in companies if company.pk == pk), None)


class Links:
    """The page's links for one viewer: an admin page's URL when the viewer may open it
    (`paperclip.board.may_open`, the sidebar's rule), else None and the page shows plain text."""

    def __init__(self, user: User):
        self.user = user

    def page(self, name: str, *args: Any) -> str | None:
        return reverse(name, args=args) if may_open(self.user, name) else None

    def list(self, model: str, **filters: Any) -> str | None:
        """The changelist of `app_model`, filtered by its own `field__lookup=value` params."""
        url = self.page(f"admin:{model}_changelist")
        return f"{url}?{urlencode(filters)}" if url and filters else url


def board_dashboard(company: Company, user: User) -> dict[str, Any]:
    """Everything the dashboard page shows `user` for `company` (the caller has checked the
    user may see it): plain values, links (to the pages the user may open) and chart geometry,
    in a fixed number of queries."""
    links = Links(user)
    from agents.models import Agent, HeartbeatRun, PauseReason
    from issues.models import Approval, Issue, Status
    from issues.models.issue import OPEN_STATUSES

    numbers = company_dashboard(company)  # 7 queries: the API's dashboard
    cid = company.pk
    issues = Issue.objects.for_company(cid).visible_on_board()

    def issue_list(status: str) -> str:
        return links.list("issues_issue", status__exact=status, company__exact=cid)

    stale = list(
        Issue.objects.for_company(cid)
        .stale_locks()
        .order_by("updated_at", "pk")
        .values_list("pk", "identifier")[:STALE_LOCKS_NAMED]
    )
    paused_by_budget = (
        Agent.objects.for_company(cid)
        .filter(status=Agent.Status.PAUSED, pause_reason=PauseReason.BUDGET)
        .count()
    )
    needs_human = [
        _tile(
            "Pending approvals",
            numbers["pending_approvals"],
            "approval",
            links.list(
                "issues_approval", status__exact=Approval.Status.PENDING, company__exact=cid
            ),
        ),
        _tile("Blocked issues", numbers["issues"][Status.BLOCKED], "block", issue_list("blocked")),
        _tile(
            "In review", numbers["issues"][Status.IN_REVIEW], "rate_review", issue_list("in_review")
        ),
        _tile(
            "Stale locks",
            numbers["stale_locks"],
            "lock_clock",
            None,  # no admin list filters them yet: each one is named and linked instead
            named=[
                {"text": identifier, "url": links.page("admin:issues_issue_change", pk)}
                for pk, identifier in stale
            ],
        ),
        _tile(
            "Paused by budget",
            paused_by_budget,
            "money_off",
            links.list(
                "agents_agent",
                status__exact=Agent.Status.PAUSED,
                pause_reason__exact=PauseReason.BUDGET,
                company__exact=cid,
            ),
        ),
    ]

    issue_total = sum(numbers["issues"].values())
    issues_by_status = [
        {
            "status": status,
            "label": label,
            "count": numbers["issues"][status],
            "percent": round(numbers["issues"][status] * 100 / issue_total, 2)
            if issue_total
            else 0,
            "url": issue_list(status),
        }
        for status, label in Status.choices
    ]
    agents_by_status = [
        {
            "status": status,
            "label": label.replace("_", " "),
            "count": numbers["agents"][status],
            "url": links.list("agents_agent", status__exact=status, company__exact=cid),
        }
        for status, label in Agent.Status.choices
    ]

    today = timezone.now().date()
    daily = _issue_days(issues, today)  # 2 queries
    open_now = sum(numbers["issues"][status] for status in OPEN_STATUSES)
    spend = numbers["spend"]
    return {
        "company": company,
        "needs_human": needs_human,
        "needs_human_total": sum(tile["count"] for tile in needs_human),
        "agents_by_status": agents_by_status,
        "agents_total": sum(numbers["agents"].values()),
        "issues_by_status": issues_by_status,
        "issues_total": issue_total,
        "open_issues": open_now,
        "live_runs": {
            "count": numbers["live_runs"],
            # Live as the page was drawn: live-by-status with a lease that had not expired.
            "url": links.list(
                "agents_heartbeatrun",
                status__in=",".join(HeartbeatRun.LIVE_STATUSES),
                lease_expires_at__gt=timezone.now().replace(microsecond=0).isoformat(),
                company__exact=cid,
            ),
        },
        "spend": {
            **spend,
            "spent": dollars(spend["month_spend_cents"]),
            "budget": dollars(spend["month_budget_cents"]),
            "bar": _bar(spend["utilization_percent"]),
            "tone": _tone(spend["utilization_percent"], bool(spend["month_budget_cents"])),
        },
        "agent_spend": _agent_spend(cid, links),  # 1 query
        "open_chart": _open_chart(daily, open_now),
        "flow_chart": _flow_chart(daily),
        "throughput": _throughput(daily, today),
        "recent_activity": _activity(numbers["recent_activity"], company, links),  # up to 3 queries
        "agents_url": links.list("agents_agent", company__exact=cid),
        "activity_url": links.list("companies_activityevent"),
    }


def _tile(label: str, count: int, icon: str, url: str | None, named=()) -> dict[str, Any]:
    return {"label": label, "count": count, "icon": icon, "url": url, "named": list(named)}


def dollars(cents: int | Decimal) -> str:
    return f"${Decimal(cents) / 100:,.2f}"


def _bar(percent: float) -> float:
    """A progress bar's width: the percentage, capped at the bar's end."""
    return min(float(percent), 100.0)


def _tone(percent: float, has_budget: bool) -> str:
    if not has_budget:
        return "none"
    if percent >= 100:
        return "over"
    return "soft" if percent >= SOFT_LIMIT else "ok"


def _agent_spend(company_id: str, links: Links) -> list[dict[str, Any]]:
    """This month's biggest spenders (then those with a budget), spend against budget."""
    from agents.models import Agent, whole_cents

    agents = (
        Agent.objects.for_company(company_id)
        .exclude(status=Agent.Status.TERMINATED)
        .with_spend()
        .order_by("-spent_cents_this_month", "-budget_monthly_cents", "name")
        .values("pk", "name", "status", "budget_monthly_cents", "spent_cents_this_month")
    )[:AGENTS_BY_SPEND]
    rows = []
    for agent in agents:
        spent, budget = agent["spent_cents_this_month"], agent["budget_monthly_cents"]
        percent = utilization_percent(spent, budget)
        rows.append(
            {
                "name": agent["name"],
                "status": agent["status"],
                "url": links.page("admin:agents_agent_change", agent["pk"]),
                "spent_cents": whole_cents(spent),
                "budget_cents": budget,
                "spent": dollars(spent),
                "budget": dollars(budget) if budget else "",
                "percent": percent,
                "bar": _bar(percent),
                "tone": _tone(percent, bool(budget)),
            }
        )
    return rows


@dataclass
class Day:
    day: date
    created: int = 0
    done: int = 0
    closed: int = 0  # done, cancelled or failed that day


def _issue_days(issues, today: date) -> list[Day]:
    """The last `WEEKS * 7` days, oldest first: issues created, done and closed each (UTC) day.

    Closed is read from the terminal timestamps (`completed_at`, `cancelled_at`, `failed_at`;
    only one is set, and a reopen clears it), so a reopened issue counts as still open.
    """
    from issues.models import Status

    days = [Day(today - timedelta(days=n)) for n in range(WEEKS * 7 - 1, -1, -1)]
    by_day = {d.day: d for d in days}
    since = datetime.combine(days[0].day, time.min, tzinfo=timezone.get_current_timezone())
    created = (
        issues.filter(created_at__gte=since)
        .values(day=TruncDate("created_at"))
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in created:
        if row["day"] in by_day:
            by_day[row["day"]].created = row["n"]
    closed = (
        issues.annotate(closed_at=Coalesce("completed_at", "cancelled_at", "failed_at"))
        .filter(closed_at__gte=since)
        .values(day=TruncDate("closed_at"))
        .annotate(n=Count("pk"), done=Count("pk", filter=Q(status=Status.DONE)))
        .order_by()
    )
    for row in closed:
        if row["day"] in by_day:
            by_day[row["day"]].closed, by_day[row["day"]].done = row["n"], row["done"]
    return days


def _nice_max(value: int) -> int:
    """The chart's top: the peak rounded up to 1, 2 or 5 times a power of ten (at least 4, so
    small counts do not fill the whole height)."""
    top = max(value, 4)
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= top:
                return m * step
        step *= 10


def _half(top: int) -> str:
    """The middle gridline's label."""
    return f"{top / 2:g}"


def _label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _open_chart(days: list[Day], open_now: int) -> dict[str, Any]:
    """Open issues at the end of each of the last `DAYS` days, walked back from today's count:
    the day before held what today holds, less what was created today, plus what was closed."""
    recent = days[-DAYS:]
    counts = [0] * len(recent)
    current = open_now
    for i in range(len(recent) - 1, -1, -1):
        counts[i] = max(current, 0)
        current = current - recent[i].created + recent[i].closed
    top = _nice_max(max(counts))
    step = 100 / (len(recent) - 1)
    points = [(round(i * step, 2), round(100 - n * 100 / top, 2)) for i, n in enumerate(counts)]
    line = " ".join(f"{x},{y}" for x, y in points)
    return {
        "line": line,
        "area": f"0,100 {line} 100,100",
        "top": top,
        "now": open_now,
        "half": _half(top),
        "points": [
            {"x": round(x - step / 2, 2), "w": round(step, 2), "label": _label(d.day), "count": n}
            for (x, y), d, n in zip(points, recent, counts, strict=True)
        ],
        "first": _label(recent[0].day),
        "last": _label(recent[-1].day),
    }


def _flow_chart(days: list[Day]) -> dict[str, Any]:
    """Issues created and done per day over the last `DAYS` days, as paired bars."""
    recent = days[-DAYS:]
    top = _nice_max(max(max(d.created, d.done) for d in recent))
    slot = 100 / len(recent)
    bars = []
    for i, d in enumerate(recent):
        x = i * slot
        bars.append(
            {
                "label": _label(d.day),
                "created": d.created,
                "done": d.done,
                "slot_x": round(x, 2),
                "slot_w": round(slot, 2),
                "created_x": round(x + slot * 0.15, 2),
                "done_x": round(x + slot * 0.5, 2),
                "w": round(slot * 0.35, 2),
                "created_h": round(d.created * 100 / top, 2),
                "done_h": round(d.done * 100 / top, 2),
                "created_y": round(100 - d.created * 100 / top, 2),
                "done_y": round(100 - d.done * 100 / top, 2),
            }
        )
    return {
        "bars": bars,
        "top": top,
        "created": sum(d.created for d in recent),
        "done": sum(d.done for d in recent),
        "half": _half(top),
        "first": _label(recent[0].day),
        "last": _label(recent[-1].day),
    }


def _throughput(days: list[Day], today: date) -> dict[str, Any]:
    """Issues done per 7-day week, the last `WEEKS` weeks ending today, and the weekly mean."""
    weeks = [days[i : i + 7] for i in range(0, len(days), 7)]
    done = [sum(d.done for d in week) for week in weeks]
    top = _nice_max(max(done))
    slot = 100 / len(weeks)
    bars = [
        {
            "label": _label(week[0].day),
            "done": n,
            "x": round(i * slot + slot * 0.2, 2),
            "w": round(slot * 0.6, 2),
            "h": round(n * 100 / top, 2),
            "y": round(100 - n * 100 / top, 2),
        }
        for i, (week, n) in enumerate(zip(weeks, done, strict=True))
    ]
    mean = sum(done) / len(done)
    return {
        "bars": bars,
        "top": top,
        "this_week": done[-1],
        "half": _half(top),
        "mean": round(mean, 1),
        "mean_y": round(100 - mean * 100 / top, 2),
        "first": bars[0]["label"],
        "last": bars[-1]["label"],
    }


def _activity(rows, company: Company, links: Links) -> list[dict[str, Any]]:
    """The activity rows with names for ids: the actor, the issue (its identifier) and an agent
    the row is about, in one query per kind of name (agents, users, issues) whatever the rows."""
    from agents.models import Agent
    from issues.models import Issue

    agent_ids = {r.actor_id for r in rows if r.actor_type == "agent"}
    agent_ids |= {r.entity_id for r in rows if r.entity_type == "agent"}
    user_ids = {r.actor_id for r in rows if r.actor_type == "user"}
    issue_ids = {r.issue_id for r in rows if r.issue_id}
    agents = dict(
        Agent.objects.for_company(company.pk).filter(pk__in=agent_ids).values_list("pk", "name")
    )
    users = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username"))
    issues = {
        pk: (identifier, title)
        for pk, identifier, title in Issue.objects.for_company(company.pk)
        .filter(pk__in=issue_ids)
        .values_list("pk", "identifier", "title")
    }
    now = timezone.now()
    activity = []
    for row in rows:
        if row.actor_type == "agent":
            actor = agents.get(row.actor_id, "A removed agent")
        elif row.actor_type == "user":
            actor = users.get(row.actor_id, "A removed user")
        else:
            actor = "Paperclip"
        identifier, title = issues.get(row.issue_id, (None, None))
        subject, subject_url = identifier, None
        if identifier:
            subject_url = links.page("admin:issues_issue_change", row.issue_id)
        elif row.entity_type == "agent" and row.entity_id in agents:
            subject = agents[row.entity_id]
            subject_url = links.page("admin:agents_agent_change", row.entity_id)
        elif row.entity_type == "company":
            subject = company.name
        activity.append(
            {
                "when": row.created_at,
                "ago": relative_time(row.created_at, now),
                "actor": actor,
                "actor_type": row.actor_type,
                "action": row.action,
                "summary": _summary(row.details),
                "subject": subject,
                "subject_title": title or "",
                "subject_url": subject_url,
            }
        )
    return activity


def _summary(details: Any) -> str:
    """What changed, in a few words: a status move as `todo → done`, else the fields named."""
    changes = details.get("changes") if isinstance(details, dict) else None
    if not isinstance(changes, dict) or not changes:
        return ""
    status = changes.get("status")
    if isinstance(status, dict) and "from" in status and "to" in status:
        moved = f"{status['from']} → {status['to']}".replace("_", " ")
        others = [name for name in changes if name != "status"]
        return f"{moved}" + (f" · {', '.join(others)}" if others else "")
    return ", ".join(changes)
