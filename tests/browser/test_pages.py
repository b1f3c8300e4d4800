"""Every board page loads in Chromium without a console error or a failed request, with a few
rows of data, and is kept as a screenshot at 1280 and 390 px (var/screenshots/): every
changelist, every object page, the kanban, the org chart and a document's revision diff."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

pytestmark = pytest.mark.browser

LISTS = {
    "issues": "admin:issues_issue_changelist",
    "approvals": "admin:issues_approval_changelist",  # the queue: awaiting a decision
    "agents": "admin:agents_agent_changelist",
    "runs": "admin:agents_heartbeatrun_changelist",  # the run monitor: live runs
    "activity": "admin:companies_activityevent_changelist",
    "webhook-endpoints": "admin:agents_webhookendpoint_changelist",
    "webhook-deliveries": "admin:agents_webhookdelivery_changelist",
    "companies": "admin:companies_company_changelist",
    "users": "admin:companies_user_changelist",
    "groups": "admin:auth_group_changelist",
    "board-tokens": "admin:companies_boardtoken_changelist",
    "agent-api-keys": "admin:agents_agentapikey_changelist",
    "wakeup-requests": "admin:agents_wakeuprequest_changelist",
    "wake-deliveries": "admin:agents_wakedelivery_changelist",
    "teams": "admin:agents_team_changelist",
    "projects": "admin:issues_project_changelist",
    "goals": "admin:issues_goal_changelist",
    "labels": "admin:issues_label_changelist",
    "documents": "admin:issues_document_changelist",
    "comments": "admin:issues_comment_changelist",
}
PAGES = {
    "issue": ("admin:issues_issue_change", "issue"),
    "approval": ("admin:issues_approval_change", "approval"),
    "agent": ("admin:agents_agent_change", "agent"),
    "run": ("admin:agents_heartbeatrun_change", "run"),
    "webhook-endpoint": ("admin:agents_webhookendpoint_change", "endpoint"),
    "webhook-delivery": ("admin:agents_webhookdelivery_change", "delivery"),
    "company": ("admin:companies_company_change", "company"),
    "user": ("admin:companies_user_change", "user"),
    "group": ("admin:auth_group_change", "group"),
    "wakeup-request": ("admin:agents_wakeuprequest_change", "wake"),
    "team": ("admin:agents_team_change", "team"),
    "project": ("admin:issues_project_change", "project"),
    "goal": ("admin:issues_goal_change", "goal"),
    "label": ("admin:issues_label_change", "label"),
    "document": ("admin:issues_document_change", "document"),
    "comment": ("admin:issues_comment_change", "comment"),
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

    response = board_page.goto(reverse(url_name, args=[quote(world[key].pk)]))

    assert response.status == 200
    assert board_page.locator("form").count() >= 1
    shot(board_page, name)


def test_the_kanban_loads_with_its_cards(board_page, world, shot):
    response = board_page.goto(
        f"{reverse('admin:issues_issue_kanban')}?company={world['company'].pk}"
    )

    assert response.status == 200
    assert board_page.locator("article.pc-card").count() >= 4
    shot(board_page, "kanban")


def test_the_org_chart_loads_with_its_chain_of_command(board_page, world, shot):
    response = board_page.goto(reverse("admin:agents_agent_tree"))

    assert response.status == 200
    assert board_page.get_by_role("link", name="Builder").count() >= 1
    shot(board_page, "org-chart")


def test_a_documents_revision_diff_loads(board_page, world, shot):
    document = world["document"]

    response = board_page.goto(
        reverse(
            "admin:issues_issue_revision_diff",
            args=[quote(document.issue_id), quote(document.latest_revision_id)],
        )
    )

    assert response.status == 200
    assert board_page.get_by_text("v2").count() >= 1
    shot(board_page, "revision-diff")


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


# Nothing wider than the screen: no page scrolls sideways and no table or inline scrolls inside
# its card (a scrollbar there hides the last column), at 1280 px; at 390 px no page scrolls
# sideways and seats' rows (stacked on a phone) fit in their card.
OVERFLOW = """() => {
  const wide = [];
  if (document.documentElement.scrollWidth > innerWidth) wide.push("the page");
  for (const box of document.querySelectorAll("#content *")) {
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(box).overflowX);
    if (scrolls && box.scrollWidth > box.clientWidth + 1) {
      const inside = box.querySelector("#result_list, table, fieldset");
      wide.push((inside && (inside.id || inside.className)) || box.className);
    }
  }
  return wide;
}"""


@pytest.mark.parametrize("name", ["project", "user", "company", "webhook-endpoint"])
def test_an_objects_page_fits_the_screen(board_page, world, name):
    url_name, key = PAGES[name]
    board_page.goto(reverse(url_name, args=[quote(world[key].pk)]))

    for size in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        board_page.set_viewport_size(size)
        assert board_page.evaluate(OVERFLOW) == [], size


@pytest.mark.parametrize("name", ["webhook-deliveries", "wake-deliveries", "users", "runs"])
def test_a_list_fits_the_screen_at_1280(board_page, world, name):
    board_page.set_viewport_size({"width": 1280, "height": 800})
    board_page.goto(reverse(LISTS[name]))

    assert board_page.evaluate(OVERFLOW) == []


# Each card's move-to select shows its status in full ("In Progress" was clipped at 1280 px).
CLIPPED_SELECTS = """() => {
  const ruler = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("article.pc-card select")].flatMap((select) => {
    const style = getComputedStyle(select);
    ruler.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    return [...select.options].filter((option) => {
      const needed = ruler.measureText(option.text).width + parseFloat(style.paddingLeft) +
        parseFloat(style.paddingRight) + parseFloat(style.borderLeftWidth) +
        parseFloat(style.borderRightWidth) + (style.appearance === "none" ? 0 : 20);  // the
      // browser's own arrow, about 20 px, is drawn inside the padding
      return needed > select.getBoundingClientRect().width;
    }).map((option) => option.text);
  });
}"""


def test_a_kanban_cards_move_to_select_shows_every_status_in_full(board_page, world):
    board_page.goto(f"{reverse('admin:issues_issue_kanban')}?company={world['company'].pk}")

    for size in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        board_page.set_viewport_size(size)
        assert board_page.evaluate(CLIPPED_SELECTS) == [], size


def test_a_seat_being_added_on_a_phone_fits_its_card(board_page, world):
    board_page.set_viewport_size({"width": 390, "height": 844})
    board_page.goto(reverse("admin:companies_company_change", args=[quote(world["company"].pk)]))

    board_page.get_by_text("Add another Membership").click()

    assert board_page.locator(".select2-container:visible").last.bounding_box()["width"] > 150
    assert board_page.evaluate(OVERFLOW) == []
