"""The board in a real browser: Playwright drives the machine's Chromium against the live server.

Chromium is Debian's package (`make test` installs it with apt-get where it may, see
scripts/chromium-install); Playwright never downloads a browser. Where Chromium is missing or does
not start, these tests skip and say why, unless `PAPERCLIP_REQUIRE_BROWSER=1` (set by .ci/run),
which makes that a failure, as `PAPERCLIP_REQUIRE_POSTGRES` does for PostgreSQL.

Every page a test opens must load cleanly: a console error, an uncaught exception or a same-origin
request answered 4xx/5xx (or failing) fails the test. `shot(page, name)` keeps the page at 1280 and
390 px (a phone) under var/screenshots/, git-ignored, kept by CI as artifacts.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from agents.authentication import agent_actor
from agents.models import Agent, HeartbeatRun, WebhookDelivery
from companies.authentication import board_actor
from issues.models import Approval, Priority, Status
from issues.services.approvals import approval_create
from issues.services.comments import comment_create
from issues.services.lifecycle import issue_create
from tests import factories

CHROMIUM = os.environ.get("PAPERCLIP_CHROMIUM", "/usr/bin/chromium")
# This machine's network is closed: no background fetches, updates, sync or QUIC probes.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WATCH = pytest.StashKey["PageWatch"]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: drives Chromium with Playwright against the live server (tests/browser); "
        "skipped where Chromium is missing, unless PAPERCLIP_REQUIRE_BROWSER=1",
    )


def cannot_run(reason: str) -> None:
    """Skip, saying why; or fail when the run demands the browser tests (CI)."""
    if os.environ.get("PAPERCLIP_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PAPERCLIP_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests, closed after the last of them.

    While it is open, Playwright's sync API keeps an asyncio loop running in this thread, and
    Django refuses ORM calls under a running loop (SynchronousOnlyOperation). The tests build
    their data here and the live server answers from its own thread, so the check is turned off
    (DJANGO_ALLOW_ASYNC_UNSAFE) for exactly as long as the browser is open.
    """
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        cannot_run("Playwright is not installed (make install)")
    if not os.access(CHROMIUM, os.X_OK):
        cannot_run(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium with apt-get "
            "when it may (root or password-less sudo); or set PAPERCLIP_CHROMIUM"
        )
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except Error as error:
            cannot_run(f"Chromium at {CHROMIUM} did not start: {error.message.splitlines()[0]}")
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageWatch:
    """What went wrong while a page was open: console errors, uncaught exceptions, and requests
    to our own server that failed or were answered 4xx/5xx."""

    def __init__(self, page, origin: str):
        self.page = page
        self.origin = origin
        self.problems: list[str] = []
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error: {error}"))
        page.on("response", self.response)
        page.on("requestfailed", self.request_failed)

    def ours(self, url: str) -> bool:
        return url.startswith(self.origin + "/")

    @staticmethod
    def path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def console(self, message) -> None:
        if message.type == "error":
            where = message.location.get("url")
            self.problems.append(
                f"console error: {message.text}" + (f" ({self.path(where)})" if where else "")
            )

    def response(self, response) -> None:
        if response.status >= 400 and self.ours(response.url):
            request = response.request
            self.problems.append(f"{request.method} {self.path(response.url)}: {response.status}")

    def request_failed(self, request) -> None:
        # A load cut short by the next navigation is not a defect of the page.
        if self.ours(request.url) and request.failure != "net::ERR_ABORTED":
            self.problems.append(
                f"{request.method} {self.path(request.url)} failed: {request.failure}"
            )

    def flush(self) -> None:
        if not self.page.is_closed():
            self.page.evaluate("0")  # a round trip delivers the events still on their way

    def take(self) -> list[str]:
        """The problems so far, forgotten: a test expecting one (a refused move answered 422)
        asserts it is exactly what it expected."""
        self.flush()
        problems, self.problems = self.problems, []
        return problems

    def check(self) -> None:
        self.flush()
        assert not self.problems, "the page reported problems:\n  " + "\n  ".join(self.problems)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test whose page reported a problem fails, after its own assertions passed."""
    result = yield
    watch = item.stash.get(WATCH, None)
    if watch is not None:
        watch.check()
    return result


@pytest.fixture
def page(browser, live_server, request):
    """A fresh browser context at 1280x900 on the live server (relative URLs work in goto)."""
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    request.node.stash[WATCH] = PageWatch(page, live_server.url)
    yield page
    context.close()


@pytest.fixture
def page_watch(page, request) -> PageWatch:
    """What `page` reported so far (`take()` to assert on expected problems)."""
    return request.node.stash[WATCH]


@pytest.fixture(autouse=True)
def plain_http_cookies(settings):
    """The live server speaks plain HTTP; with DEBUG off the session and CSRF cookies would be
    Secure, as in production behind TLS."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def board_page(page, admin_user, live_server):
    """`page` signed in as the instance admin (a superuser), by session cookie: the login form
    itself is tested once, in test_pages.py."""
    client = Client()
    client.force_login(admin_user)
    session = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": session.key, "value": session.value, "url": live_server.url}]
    )
    return page


def resize(page, size: dict[str, int]) -> None:
    """Resize the window and wait two frames: the page lays itself out again (media queries,
    the theme's resize observers) only after the call returns."""
    page.set_viewport_size(size)
    page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


@pytest.fixture
def shot():
    """`shot(page, name)`: the whole page at 1280 px and at 390 px wide, as
    var/screenshots/<name>-1280.png and <name>-390.png; the viewport is 1280x900 again after.

    The window is made as tall as the page before the shot, so fixed and sticky parts (the
    sidebar, the save bar) sit where a reader scrolling to them would see them, not stamped at
    the first screen's bottom. A page wider than the window (overflow) shows as a wider image.
    """

    def take(page, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        paths = []
        for size in (DESKTOP, PHONE):
            resize(page, size)
            height = page.evaluate("document.documentElement.scrollHeight")
            resize(page, {"width": size["width"], "height": max(height, size["height"])})
            path = SCREENSHOTS / f"{name}-{size['width']}.png"
            page.screenshot(path=path, full_page=True, animations="disabled")
            paths.append(path)
        page.set_viewport_size(DESKTOP)
        return paths

    return take


@pytest.fixture
def world(admin_user):
    """A company with a few rows of everything a triager sees, made through the services where
    they exist (so the activity log is the one real use writes), and another company."""
    with transaction.atomic():  # as a request would: the cost report locks its issue
        return build_world(admin_user)


def build_world(admin_user) -> dict:
    company = factories.CompanyFactory(name="Acme Robotics", issue_prefix="ACM")
    factories.MembershipFactory(company=company, user=admin_user)
    board = board_actor(admin_user)
    ceo = factories.AgentFactory(
        company=company, name="Ada", role=Agent.Role.CEO, title="Chief Executive"
    )
    builder = factories.AgentFactory(
        company=company, name="Builder", title="Backend engineer", reports_to=ceo
    )
    reviewer = factories.AgentFactory(
        company=company, name="Quinn", role=Agent.Role.QA, reports_to=ceo, budget_monthly_cents=5000
    )
    project = factories.ProjectFactory(company=company, name="Website relaunch")
    bug = factories.LabelFactory(company=company, name="bug")
    issues = [
        issue_create(
            actor=board,
            company=company,
            data={
                "title": title,
                "description": "Steps:\n\n1. Open the page\n2. **Look** at `the header`",
                "priority": priority,
                "project": project,
                "assignee_agent": assignee,
                "labels": labels,
            },
        )
        for title, priority, assignee, labels in [
            ("Fix the login redirect loop on Safari", Priority.CRITICAL, builder, [bug]),
            ("Write the onboarding guide for new agents", Priority.MEDIUM, None, []),
            ("Migrate the billing exports to the new bucket", Priority.HIGH, builder, []),
            ("Review the Q3 hiring plan", Priority.LOW, reviewer, []),
        ]
    ]
    factories.IssueFactory(company=company, title="Old spike on caching", status=Status.DONE)
    factories.IssueFactory(
        company=company, title="Investigate flaky deploys", status=Status.BLOCKED
    )
    comment_create(actor=board, issue=issues[0], body="Seen again this morning, **urgent**.")
    comment_create(
        actor=agent_actor(builder), issue=issues[0], body="On it: the cookie path is wrong."
    )

    now = timezone.now()
    live = factories.HeartbeatRunFactory(
        agent=builder,
        issue_id=issues[0].pk,
        status=HeartbeatRun.Status.RUNNING,
        started_at=now - timedelta(minutes=3),
        log_tail="reading issue ACM-1\nchecking out\n",
    )
    factories.HeartbeatRunFactory(
        agent=builder,
        issue_id=issues[2].pk,
        status=HeartbeatRun.Status.SUCCEEDED,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=1, minutes=50),
        lease_expires_at=None,
        usage={"inputTokens": 12000, "outputTokens": 900, "costCents": 42},
    )
    factories.HeartbeatRunFactory(
        agent=reviewer,
        status=HeartbeatRun.Status.FAILED,
        started_at=now - timedelta(days=1),
        finished_at=now - timedelta(days=1) + timedelta(minutes=1),
        lease_expires_at=None,
        error="process exited with code 1",
        exit_code=1,
    )

    approval_create(
        actor=agent_actor(ceo),
        company=company,
        type=Approval.Type.REQUEST_BOARD_APPROVAL,
        payload={"summary": "Spend $200 on a design contractor for the relaunch"},
        issues=[issues[1]],
    )
    Approval.objects.create(
        company=company,
        type=Approval.Type.HIRE_AGENT,
        requested_by_agent=ceo,
        payload={"name": "Designer", "role": "designer", "title": "Product designer"},
    ).issues.set([issues[0]])

    endpoint = factories.WebhookEndpointFactory(
        company=company, url="https://hooks.example.com/paperclip", description="Ops channel"
    )
    factories.WebhookEndpointFactory(company=company, events=["issue.updated", "issue.created"])
    factories.WebhookDeliveryFactory(endpoint=endpoint, status=WebhookDelivery.Status.SUCCEEDED)
    factories.WebhookDeliveryFactory(
        endpoint=endpoint, status=WebhookDelivery.Status.FAILED, response_status=500
    )

    goal = factories.GoalFactory(company=company, title="Relaunch the website by March")
    project.goals.add(goal)
    team = factories.TeamFactory(company=company, name="Platform")
    plan = factories.DocumentFactory(
        issue=issues[0], key="plan", title="Fix plan", revisions=2, revisions__author_agent=builder
    )
    factories.AgentApiKeyFactory(agent=builder, name="laptop")
    factories.BoardTokenFactory(user=admin_user, name="cli")
    reviewers = factories.GroupFactory(name="Reviewers")
    wake = factories.WakeupRequestFactory(run=live, reason="issue_assigned")
    factories.WakeDeliveryFactory(run=live, url="https://agents.example.com/builder/wake")

    other = factories.CompanyFactory(name="Globex", issue_prefix="GLO")
    factories.IssueFactory(company=other, assignee_agent=factories.AgentFactory(company=other))

    return {
        "company": company,
        "agent": builder,
        "issue": issues[0],
        "run": live,
        "approval": Approval.objects.filter(company=company).earliest("created_at"),
        "endpoint": endpoint,
        "delivery": endpoint.deliveries.earliest("created_at"),
        "project": project,
        "goal": goal,
        "label": bug,
        "team": team,
        "document": plan,
        "comment": issues[0].comments.earliest("created_at"),
        "wake": wake,
        "user": admin_user,
        "group": reviewers,
    }
