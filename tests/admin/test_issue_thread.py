"""The issue page reads as a thread: the essentials, one timeline of comments, activity, runs and
document revisions (names, not ids; markdown rendered safely), a comment box, force-release next
to the lock, and a revision's diff; its query count does not grow with the thread."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from agents.models import WakeupRequest
from companies.authentication import board_actor
from companies.models import ActivityEvent
from issues import services
from issues.models import Comment, Document, DocumentRevision, Issue, Status
from tests import factories
from tests.admin import messages_of


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def page_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[quote(issue.pk)])


def comment_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_comment", args=[quote(issue.pk)])


def release_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_force_release", args=[quote(issue.pk)])


def diff_url(issue: Issue, revision: DocumentRevision) -> str:
    return reverse("admin:issues_issue_revision_diff", args=[quote(issue.pk), quote(revision.pk)])


def visible_text(response) -> str:
    """What a reader sees: the page without its tags, scripts and styles."""
    page = response.content.decode()
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def thread_html(response) -> str:
    page = response.content.decode()
    return page[page.index('aria-label="Thread"') : page.index('class="pc-box"')]


def write_plan(issue: Issue, user, bodies: list[str]) -> Document:
    actor = board_actor(user)
    document = None
    for number, body in enumerate(bodies, start=1):
        document, _ = services.document_put(
            actor=actor,
            issue=issue,
            key="plan",
            title="Plan",
            body=body,
            change_summary=f"edit {number}",
            base_revision_id=document.latest_revision_id if document else None,
        )
    return document


def grow(issue: Issue, user, agent, entries: int) -> None:
    """`entries` timeline entries, cycling through the four kinds (each kind's rows the way
    the API or the worker writes them)."""
    actor = board_actor(user)
    document = None
    for n in range(entries):
        kind = n % 4
        if kind == 0:
            factories.CommentFactory(issue=issue, author_agent=agent, body=f"Step **{n}**")
        elif kind == 1:
            factories.HeartbeatRunFactory(agent=agent, issue_id=issue.pk, status="succeeded")
        elif kind == 2:
            services.issue_update(actor=actor, issue=issue, changes={"title": f"Title {n}"})
        else:
            document, _ = services.document_put(
                actor=actor,
                issue=issue,
                key="plan",
                title="Plan",
                body=f"v{n}",
                base_revision_id=document.latest_revision_id if document else None,
            )


def test_the_thread_shows_each_kind_by_name_and_no_raw_ids(staff, company, agent, admin_user):
    parent = factories.IssueFactory(company=company, title="The epic")
    issue = factories.IssueFactory(
        company=company, title="Ship it", status=Status.TODO, assignee_agent=agent, parent=parent
    )
    child = factories.IssueFactory(company=company, title="A part", parent=issue)
    actor = board_actor(admin_user)
    services.comment_create(actor=actor, issue=issue, body="Looks *good*")
    factories.CommentFactory(issue=issue, author_agent=agent, body="On it")
    run = factories.HeartbeatRunFactory(
        agent=agent, issue_id=issue.pk, status="succeeded", wake_reason="issue_assigned"
    )
    services.issue_update(actor=actor, issue=issue, changes={"status": Status.IN_PROGRESS})
    write_plan(issue, admin_user, ["one", "two"])

    response = staff.get(page_url(issue))

    assert response.status_code == 200
    text = visible_text(response)
    thread = thread_html(response)
    assert "root commented" in text and "Builder commented" in text
    assert "<em>good</em>" in thread  # markdown rendered
    assert "moved todo → in_progress" in text  # the activity row, in words
    assert reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)]) in thread
    assert "Builder's run" in text and "Succeeded" in text
    assert "plan revision 2: edit 2" in text
    revision = DocumentRevision.objects.get(number=2)
    assert diff_url(issue, revision) in thread
    # The essentials: identifiers linked for the parent and the child, the assignee by name.
    assert (
        f'{page_url(parent)}" title="The epic">{parent.identifier}</a>' in response.content.decode()
    )
    assert f">{child.identifier}</a>" in response.content.decode()
    assert "Builder" in text
    for prefix in ("cmt_", "run_", "usr_", "agt_", "rev_", "act_"):
        assert prefix not in text, prefix
    # Oldest first: the board's comment, then the agent's.
    assert thread.index("Looks") < thread.index("On it")


def test_markdown_is_rendered_without_scripts_or_script_links(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)
    factories.CommentFactory(
        issue=issue,
        author_user=admin_user,
        body=(
            "**bold** <script>alert(1)</script> [evil](javascript:alert(1)) "
            '[ok](https://example.com) <img src=x onerror="alert(2)">'
        ),
    )

    thread = thread_html(staff.get(page_url(issue)))

    assert "<strong>bold</strong>" in thread
    assert "<script>" not in thread and "<img" not in thread
    assert "&lt;script&gt;" in thread  # shown as text, never run
    assert 'href="javascript' not in thread
    assert '<a href="https://example.com" rel="noopener nofollow">ok</a>' in thread


def test_a_comment_from_the_box_lands_and_wakes_the_assignee(staff, company, agent, admin_user):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)

    response = staff.post(comment_url(issue), {"new_comment": "Please\r\nhurry"}, follow=True)

    assert messages_of(response) == ["Comment added."]
    comment = Comment.objects.get(issue=issue)
    assert (comment.body, comment.author_user) == ("Please\nhurry", admin_user)
    row = ActivityEvent.objects.get(action="issue.comment_added")
    assert (row.actor_type, row.actor_id, row.entity_id) == ("user", admin_user.pk, comment.pk)
    wake = WakeupRequest.objects.get(agent=agent)
    assert (wake.reason, wake.run.context.get("commentId")) == ("issue_commented", comment.pk)
    assert "Please" in thread_html(response)


def test_an_empty_comment_is_refused_without_writing(staff, company):
    issue = factories.IssueFactory(company=company)

    response = staff.post(comment_url(issue), {"new_comment": "  "}, follow=True)

    assert messages_of(response) == ["Write a comment first."]
    assert not Comment.objects.exists()


def test_the_box_reopens_a_finished_issue_when_asked(staff, company, agent):
    issue = factories.IssueFactory(company=company, status=Status.DONE, assignee_agent=agent)
    page = staff.get(page_url(issue)).content.decode()
    assert 'name="reopen"' in page  # offered on a finished issue only

    staff.post(comment_url(issue), {"new_comment": "Not quite", "reopen": "1"})

    issue.refresh_from_db()
    assert issue.status == Status.TODO
    assert ActivityEvent.objects.get(action="issue.reopened").details["reopenedFrom"] == "done"
    assert Comment.objects.get(issue=issue).body == "Not quite"


def test_a_comment_on_a_finished_issue_without_reopen_leaves_it_finished(staff, company, agent):
    issue = factories.IssueFactory(company=company, status=Status.DONE, assignee_agent=agent)

    staff.post(comment_url(issue), {"new_comment": "For the record"})

    issue.refresh_from_db()
    assert issue.status == Status.DONE
    assert Comment.objects.filter(issue=issue).count() == 1
    assert not WakeupRequest.objects.exists()  # a finished issue's assignee is not woken


def test_an_open_issue_offers_no_reopen(staff, company):
    issue = factories.IssueFactory(company=company)

    assert 'name="reopen"' not in staff.get(page_url(issue)).content.decode()


def test_force_release_from_the_page_names_the_holder(staff, company, agent, admin_user):
    run = factories.HeartbeatRunFactory(
        agent=agent, status="running", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )
    page = staff.get(page_url(issue)).content.decode()
    assert f'action="{release_url(issue)}"' in page and "Force-release" in page

    response = staff.post(release_url(issue), follow=True)

    assert messages_of(response) == [
        f"Released the lock of ACM-1 (held by Builder's run …{run.pk[-6:]}, stale)."
    ]
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run) == (Status.TODO, None)
    row = ActivityEvent.objects.get(action="issue.lock_force_released")
    assert (row.actor_id, row.details["previousLock"]["runId"]) == (admin_user.pk, run.pk)
    assert "force-released the lock of Builder's run (stale)" in visible_text(response)


def test_force_release_is_a_post(staff, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )

    assert staff.get(release_url(issue)).status_code == 405
    issue.refresh_from_db()
    assert issue.checkout_run == run


def test_the_diff_shows_a_revision_against_the_previous_one_escaped(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)
    write_plan(issue, admin_user, ["keep\nold <b>line</b>", "keep\nnew line"])
    second = DocumentRevision.objects.get(number=2)

    response = staff.get(diff_url(issue, second))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="pc-del">-old &lt;b&gt;line&lt;/b&gt;</span>' in page
    assert '<span class="pc-add">+new line</span>' in page
    assert '<span class="pc-same"> keep</span>' in page
    assert "against revision 1" in page


def test_the_first_revisions_diff_is_all_new(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)
    write_plan(issue, admin_user, ["hello"])

    page = staff.get(diff_url(issue, DocumentRevision.objects.get())).content.decode()

    assert '<span class="pc-add">+hello</span>' in page
    assert "the first revision" in page


def test_a_revision_of_another_issue_is_not_found(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)
    elsewhere = factories.IssueFactory(company=company)
    write_plan(elsewhere, admin_user, ["x"])

    assert staff.get(diff_url(issue, DocumentRevision.objects.get())).status_code == 404


def test_another_companys_issue_is_not_found_on_every_view(
    client, board_user, company, other_company, other_agent
):
    board_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_issue", "change_issue"])
    )
    client.force_login(board_user)
    run = factories.HeartbeatRunFactory(agent=other_agent, status="running")
    theirs = factories.IssueFactory(
        company=other_company,
        status=Status.IN_PROGRESS,
        assignee_agent=other_agent,
        checkout_run=run,
    )
    document = write_plan(theirs, factories.MembershipFactory(company=other_company).user, ["x"])
    not_found = reverse("admin:index")

    for response in (
        client.get(page_url(theirs)),
        client.post(comment_url(theirs), {"new_comment": "hi"}),
        client.post(release_url(theirs)),
        client.get(diff_url(theirs, document.latest_revision)),
    ):
        assert (response.status_code, response.url) == (302, not_found)  # "does not exist"
    theirs.refresh_from_db()
    assert theirs.checkout_run == run
    assert not Comment.objects.exists()


@pytest.mark.parametrize("entries", [3, 30])
def test_the_page_makes_the_same_queries_whatever_the_thread(
    staff, company, agent, admin_user, entries, django_assert_num_queries
):
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    grow(issue, admin_user, agent, entries)
    url = page_url(issue)

    # The admin's page: the atomic block's savepoint and its release (2), session and user (2),
    # the issue for the buttons and for the form (2), its labels and dependencies (2), the
    # documents and attachments inlines (2), the assignee's name (1), the content type (1);
    # the essentials: children and approvals (2); the thread, one query per kind: comments,
    # activity (names in subqueries), runs, revisions (4); the form's choices: company,
    # agents, users, projects, goals, teams, labels (7). None of them grows with the thread.
    with django_assert_num_queries(24):
        response = staff.get(url)

    assert response.status_code == 200
    assert thread_html(response).count('class="pc-entry ') == entries


def header_trail(response) -> str:
    """The page header's trail (its h1), as read: `Home > Issues > ACM-1 The title`."""
    page = response.content.decode()
    h1 = re.search(r"<h1\b.*?</h1>", page, flags=re.S).group(0)
    h1 = h1.replace("chevron_right", ">")
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", h1))).strip()


def test_the_issue_page_and_a_diff_say_home_issues_then_the_issue(staff, company, admin_user):
    issue = factories.IssueFactory(company=company, title="Ship the plan")
    write_plan(issue, admin_user, ["one", "two"])
    second = DocumentRevision.objects.get(number=2)

    expected = f"Home > Issues > {issue.identifier} Ship the plan"
    assert header_trail(staff.get(page_url(issue))) == expected
    assert header_trail(staff.get(diff_url(issue, second))) == expected
    assert header_trail(staff.get(reverse("admin:issues_issue_changelist"))).startswith(
        "Home > Issues"
    )
