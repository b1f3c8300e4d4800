"""Every board page loads in Chromium without a console error or a failed request, with a few
rows of data, and is kept as a screenshot at 1280 and 390 px (var/screenshots/)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.browser

LISTS = {
    "issues": "admin:issues_issue_changelist",
    "approvals": "admin:issues_approval_changelist",
    "agents": "admin:agents_agent_changelist",
    "runs": "admin:agents_heartbeatrun_changelist",
    "activity": "admin:companies_activityevent_changelist",
    "webhook-endpoints": "admin:agents_webhookendpoint_changelist",
    "companies": "admin:companies_company_changelist",
}
PAGES = {
    "issue": ("admin:issues_issue_change", "issue"),
    "approval": ("admin:issues_approval_change", "approval"),
    "agent": ("admin:agents_agent_change", "agent"),
    "run": ("admin:agents_heartbeatrun_change", "run"),
    "webhook-endpoint": ("admin:agents_webhookendpoint_change", "endpoint"),
}


def test_the_login_form_signs_in_and_lands_on_the_dashboard(page, admin_user, shot):
    page.goto(reverse("admin:login"))
    shot(page, "login")

    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit], input[type=submit]")

    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.locator(f"form[action='{reverse('admin:logout')}']").count() == 1


def test_the_dashboard_loads(board_page, world, shot):
    response = board_page.goto(reverse("admin:index"))

    assert response.status == 200
    shot(board_page, "dashboard")


@pytest.mark.parametrize("name", LISTS)
def test_a_list_loads_with_its_rows(board_page, world, shot, name):
    response = board_page.goto(reverse(LISTS[name]))

    assert response.status == 200
    assert board_page.locator("#result_list tbody tr").count() >= 1
    shot(board_page, name)


@pytest.mark.parametrize("name", PAGES)
def test_an_objects_page_loads(board_page, world, shot, name):
    url_name, key = PAGES[name]

    response = board_page.goto(reverse(url_name, args=[world[key].pk]))

    assert response.status == 200
    assert board_page.locator("form").count() >= 1
    shot(board_page, name)


def test_a_console_error_or_a_failing_request_is_reported(board_page, page_watch):
    """The harness itself: what would fail a page test is seen (and taken here, so this passes)."""
    board_page.goto(reverse("admin:index"))
    board_page.evaluate("console.error('boom')")
    board_page.evaluate("fetch('/admin/no-such-page/').then(response => response.status)")

    problems = page_watch.take()

    assert problems == [
        "console error: boom",
        "GET /admin/no-such-page/: 404",
        "console error: Failed to load resource: the server responded with a status of 404 "
        "(Not Found) (/admin/no-such-page/)",
    ]
