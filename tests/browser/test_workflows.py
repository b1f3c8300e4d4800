"""The triage workflows (issue 14's "Done means") end to end in Chromium: each one driven through
the board as a triager would (clicks, typing, a drag; no request made by hand), its clicks counted
in its docstring, then read back from the database (the status, the activity row naming the board
user) and kept as a screenshot of where it ends (var/screenshots/workflow-*).

The world (conftest.build_world): ACM-1 todo (Builder, critical), ACM-2 backlog (unassigned),
ACM-3 todo (Builder, high), ACM-4 todo (Quinn, low), a done and a blocked issue; two pending
approvals.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Approval, Issue, Status
from tests import factories

pytestmark = pytest.mark.browser

ISSUES = reverse("admin:issues_issue_changelist")


def issue(identifier: str) -> Issue:
    return Issue.objects.get(identifier=identifier)


def logged_by(user, action: str, **about) -> list[ActivityEvent]:
    """The activity rows `action` the board user wrote (about one issue or entity)."""
    return list(
        ActivityEvent.objects.filter(actor_type="user", actor_id=user.pk, action=action, **about)
    )


def row(page, identifier: str):
    """The list's row of one issue, found by its identifier's link."""
    return page.locator("#result_list tbody tr").filter(
        has=page.get_by_role("link", name=identifier, exact=True)
    )


def run_action(page, description: str) -> None:
    """Pick a changelist action by its label and press Run (the bar shows once a row is ticked);
    the next page (an intermediate form or the list again) is loaded when this returns."""
    page.locator("select[name=action]").select_option(label=description)
    with page.expect_navigation():
        page.get_by_role("button", name="Run", exact=True).click()


def card(column, identifier: str):
    """A kanban card in a column, by its identifier's link."""
    return column.get_by_role("link", name=identifier, exact=True)


def column(page, label: str):
    return page.get_by_role("region", name=label, exact=True)


def test_change_a_status_from_the_list(board_page, world, admin_user, shot):
    """2 clicks: the issue's identifier in the list, then its "Start" button at the page's top."""
    page = board_page
    page.goto(ISSUES)

    with page.expect_navigation():
        row(page, "ACM-3").get_by_role("link", name="ACM-3", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/issues/issue/iss_\w+/change/$"))
    with page.expect_navigation():
        page.locator("button[name=_fsm_transition_to][value=start]").click()

    started = issue("ACM-3")
    assert started.status == Status.IN_PROGRESS
    assert started.started_at is not None
    [updated] = logged_by(admin_user, "issue.updated", issue_id=started.pk)
    assert updated.details["changes"]["status"] == {"from": "todo", "to": "in_progress"}
    shot(page, "workflow-status-from-the-list")


def test_change_a_status_from_the_kanban_and_see_a_refused_move_snap_back(
    board_page, world, admin_user, page_watch, shot
):
    """1 drag: ACM-3's card (todo) onto In Progress, kept after a reload; then 1 drag that is
    refused: ACM-2 (backlog) onto In Review says from, to and what is allowed, and goes back.

    Both columns are on screen at 1280 px: Playwright's drag does not start when the target
    column has to be scrolled into the board first (Blocked and beyond)."""
    page = board_page
    board = f"{reverse('admin:issues_issue_kanban')}?company={world['company'].pk}"
    page.goto(board)

    page.drag_and_drop(
        "article.pc-card[data-identifier='ACM-3']", "section.pc-column[data-status=in_progress]"
    )

    expect(page.locator("#pc-notice")).to_have_text("ACM-3 moved to in progress.")
    assert issue("ACM-3").status == Status.IN_PROGRESS
    [moved] = logged_by(admin_user, "issue.updated", issue_id=issue("ACM-3").pk)
    assert moved.details["changes"]["status"] == {"from": "todo", "to": "in_progress"}
    page.reload()
    expect(card(column(page, "In Progress"), "ACM-3")).to_be_visible()

    page.drag_and_drop(
        "article.pc-card[data-identifier='ACM-2']", "section.pc-column[data-status=in_review]"
    )

    notice = page.locator("#pc-notice")
    expect(notice).to_have_text(
        "ACM-2: Invalid state transition: from backlog to in_review "
        "(allowed: todo, blocked, cancelled)"
    )
    expect(card(column(page, "Backlog"), "ACM-2")).to_be_visible()
    expect(card(column(page, "In Review"), "ACM-2")).to_have_count(0)
    assert issue("ACM-2").status == Status.BACKLOG
    assert not logged_by(admin_user, "issue.updated", issue_id=issue("ACM-2").pk)
    refused = page_watch.take()  # the refusal is the page's expected 422, nothing else
    assert refused[0] == "POST /admin/issues/issue/kanban/move/: 422"
    assert all("422" in problem for problem in refused), refused
    shot(page, "workflow-kanban-refused-move")


def test_reassign_an_issue_to_another_agent(board_page, world, admin_user, shot):
    """5 clicks: tick ACM-3, pick "Reassign…" in the actions, Run, pick Quinn (a reason typed),
    Apply."""
    page = board_page
    quinn = Agent.objects.get(company=world["company"], name="Quinn")
    page.goto(ISSUES)

    row(page, "ACM-3").get_by_role("checkbox").check()
    run_action(page, "Reassign the selected issues to another agent")
    page.get_by_label("Agent").select_option(label="Quinn")
    page.get_by_label("Reason").fill("Builder is on the billing exports")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply").click()

    expect(page.get_by_text("reassign: done for ACM-3.")).to_be_visible()
    reassigned = issue("ACM-3")
    assert reassigned.assignee_agent == quinn
    assert reassigned.status == Status.TODO
    [logged] = logged_by(admin_user, "issue.reassigned", issue_id=reassigned.pk)
    assert logged.details["toAgentId"] == quinn.pk
    assert logged.details["reason"] == "Builder is on the billing exports"
    shot(page, "workflow-reassign")


def test_approve_with_a_note(board_page, world, admin_user, shot):
    """3 clicks: the approval in the queue (which opens on the pending ones; found by the issue
    it links, ACM-2), the decision note's box (the note typed), Approve."""
    page = board_page
    approval = world["approval"]
    page.goto(reverse("admin:issues_approval_changelist"))
    expect(page.locator("#result_list tbody tr")).to_have_count(2)  # both pending

    with page.expect_navigation():
        row(page, "ACM-2").get_by_role("rowheader").get_by_role("link").click()
    page.get_by_label("Decision note").click()
    page.keyboard.type("Fine within the quarter's budget.")
    with page.expect_navigation():
        page.get_by_role("button", name="Approve", exact=True).click()

    approval.refresh_from_db()
    assert approval.status == Approval.Status.APPROVED
    assert approval.decision_note == "Fine within the quarter's budget."
    assert approval.decided_by_user == admin_user
    [logged] = logged_by(admin_user, "approval.approved", entity_id=approval.pk)
    assert logged.details["note"] == "Fine within the quarter's budget."
    shot(page, "workflow-approve-with-a-note")


def test_force_release_a_stale_lock_from_the_run_monitor(board_page, world, admin_user, shot):
    """5 clicks: Filters, "Lease expired", tick the run, pick "Force-release…", Run."""
    page = board_page
    dead = factories.HeartbeatRunFactory(
        agent=world["agent"],
        status=HeartbeatRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=20),
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )
    locked = factories.IssueFactory(
        company=world["company"],
        title="Rotate the API keys",
        status=Status.IN_PROGRESS,
        assignee_agent=world["agent"],
        checkout_run=dead,
        execution_locked_at=dead.started_at,
    )
    HeartbeatRun.objects.filter(pk=dead.pk).update(issue_id=locked.pk)  # the run is about it
    page.goto(reverse("admin:agents_heartbeatrun_changelist"))

    page.get_by_text(re.compile(r"^\s*Filters")).click()
    with page.expect_navigation():
        page.get_by_role("link", name="Lease expired").click()
    runs = page.locator("#result_list tbody tr")
    expect(runs).to_have_count(1)  # the live run of the world is not there
    expect(runs).to_contain_text(locked.identifier)
    expect(runs).to_contain_text("expired")
    runs.get_by_role("checkbox").check()
    run_action(page, "Force-release the locks the selected runs hold")

    held_by = (
        f"Released the lock of {locked.identifier} "
        f"(held by {world['agent'].name}'s run …{dead.pk[-6:]}, stale)."
    )
    expect(page.get_by_text(held_by)).to_be_visible()
    locked.refresh_from_db()
    assert locked.checkout_run_id is None
    assert locked.execution_locked_at is None
    [logged] = logged_by(admin_user, "issue.lock_force_released", issue_id=locked.pk)
    assert logged.details["previousLock"]["runId"] == dead.pk
    assert logged.details["previousLock"]["runWasLive"] is False
    shot(page, "workflow-force-release")


def test_find_an_issue_by_its_identifier(board_page, world, shot):
    """0 clicks: "acm-4" typed in the list's search box, Enter; the browser lands on ACM-4."""
    page = board_page
    wanted = issue("ACM-4")
    page.goto(ISSUES)

    page.locator("#searchbar").fill("acm-4")
    with page.expect_navigation():
        page.locator("#searchbar").press("Enter")

    change = reverse("admin:issues_issue_change", args=[quote(wanted.pk)])
    expect(page).to_have_url(re.compile(re.escape(change) + "$"))
    expect(page.locator("#id_title")).to_have_value(wanted.title)
    shot(page, "workflow-find-by-identifier")


def test_bulk_cancel_three_issues(board_page, world, admin_user, shot):
    """6 clicks: tick ACM-2, ACM-3 and ACM-4, pick "Cancel the selected issues", Run, Apply (a
    reason typed on the intermediate form)."""
    page = board_page
    page.goto(ISSUES)

    for identifier in ("ACM-2", "ACM-3", "ACM-4"):
        row(page, identifier).get_by_role("checkbox").check()
    run_action(page, "Cancel the selected issues")
    expect(page).to_have_title(re.compile(r"^Cancel: 3 issue\(s\)"))
    expect(page.locator("form.pc-bulk").get_by_role("listitem")).to_have_text(
        [re.compile(rf"^{identifier}\b") for identifier in ("ACM-2", "ACM-3", "ACM-4")]
    )
    page.get_by_label("Reason").fill("Out of scope for the relaunch")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply").click()

    expect(page.get_by_text("cancel: done for ACM-2, ACM-3, ACM-4.")).to_be_visible()
    cancelled = Issue.objects.filter(identifier__in=["ACM-2", "ACM-3", "ACM-4"])
    assert {i.status for i in cancelled} == {Status.CANCELLED}
    for one in cancelled:
        [logged] = logged_by(admin_user, "issue.cancelled", issue_id=one.pk)
        assert logged.details["reason"] == "Out of scope for the relaunch"
    assert issue("ACM-1").status == Status.TODO  # not picked, not touched
    shot(page, "workflow-bulk-cancel")


def test_the_keyboard_moves_through_the_list_and_lists_its_shortcuts(board_page, world, shot):
    """0 clicks: "?" shows the shortcuts (Esc closes them); j, j, Enter opens the second row."""
    page = board_page
    page.goto(ISSUES)
    second = page.locator("#result_list tbody tr").nth(1)
    second_url = second.locator("th a, td a").first.get_attribute("href")

    page.keyboard.press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(shortcuts).to_be_visible()
    expect(shortcuts).to_contain_text("Next / previous row")
    shot(page, "workflow-keyboard-shortcuts")
    page.keyboard.press("Escape")
    expect(shortcuts).to_have_count(0)

    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(second).to_have_class(re.compile(r"\bboard-selected\b"))
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(re.escape(second_url) + "$"))
    expect(page.locator("#id_title")).to_be_visible()


def test_comment_in_markdown_from_the_thread_and_see_it_rendered_safely(
    board_page, world, admin_user, shot
):
    """2 clicks: the comment box under ACM-1's timeline (then typing), then "Comment". The
    markdown is rendered (bold is bold); the `<script>` in it is shown as text, never run."""
    page = board_page
    page.goto(reverse("admin:issues_issue_change", args=[quote(world["issue"].pk)]))
    body = "Fixed on **staging**, <script>window.pwned = 1</script> checked twice."

    page.get_by_label("Add a comment").click()
    page.keyboard.type(body)
    with page.expect_navigation():
        page.get_by_role("button", name="Comment", exact=True).click()

    expect(page.get_by_text("Comment added.")).to_be_visible()
    newest = page.locator(".pc-timeline li.pc-comment").last
    expect(newest.locator(".pc-md strong")).to_have_text("staging")
    expect(newest.locator(".pc-md")).to_contain_text("<script>window.pwned = 1</script>")
    assert newest.locator("script").count() == 0
    assert page.evaluate("window.pwned") is None
    comment = issue("ACM-1").comments.latest("created_at")
    assert comment.body == body
    assert comment.author_user == admin_user
    assert logged_by(admin_user, "issue.comment_added", entity_id=comment.pk)
    shot(page, "workflow-comment-in-the-thread")
