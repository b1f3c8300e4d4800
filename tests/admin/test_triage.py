"""The issue list as a triage queue (DESIGN §11): open work by default, saved views, several
statuses at once, names not ids, a fixed number of queries, and bulk actions that run through
`issues.services.bulk.bulk_apply` (the `/v1` bulk service) with a result per issue."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Issue, Label, Priority, Status
from tests import factories
from tests.admin import messages_of

ISSUES = reverse("admin:issues_issue_changelist")


@pytest.fixture
def root(client, admin_user):
    client.force_login(admin_user)
    return client


def shown(response) -> set[str]:
    return {issue.identifier for issue in response.context["cl"].result_list}


def issue(company, status=Status.BACKLOG, **fields) -> Issue:
    return factories.IssueFactory(company=company, status=status, **fields)


def test_the_list_shows_open_work_by_default_and_everything_on_request(root, company):
    open_ = {issue(company, s).identifier for s in ("backlog", "todo", "blocked", "in_review")}
    finished = {issue(company, s).identifier for s in ("done", "cancelled", "failed")}

    assert shown(root.get(ISSUES)) == open_
    assert shown(root.get(ISSUES, {"status__in": "all"})) == open_ | finished


def test_several_statuses_at_once(root, company):
    todo, blocked = issue(company, "todo"), issue(company, "blocked")
    done = issue(company, "done")
    issue(company, "backlog")

    response = root.get(ISSUES, {"status__in": "todo,blocked,done"})

    assert shown(response) == {todo.identifier, blocked.identifier, done.identifier}
    # each status is a toggle: the filter's "blocked" link drops it from the set
    cl = response.context["cl"]
    [spec] = [s for s in cl.filter_specs if getattr(s, "parameter_name", "") == "status__in"]
    choices = list(spec.choices(cl))
    blocked_choice = next(c for c in choices if c["display"] == "Blocked")
    assert blocked_choice["selected"]
    assert "status__in=todo%2Cdone" in blocked_choice["query_string"]


def test_saved_views_mine_unassigned_blocked_in_review_stale_locks(root, company, admin_user):
    agent = factories.AgentFactory(company=company)
    mine = issue(company, "todo", assignee_user=admin_user)
    theirs = issue(company, "todo", assignee_agent=agent)
    nobodys = issue(company, "backlog")
    blocked = issue(company, "blocked", assignee_agent=agent)
    review = issue(company, "in_review", assignee_agent=agent)
    dead = factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.FAILED)
    stale = issue(company, "in_progress", assignee_agent=agent, checkout_run=dead)
    live = factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.RUNNING)
    held = issue(company, "in_progress", assignee_agent=agent, checkout_run=live)

    response = root.get(ISSUES)
    views = {v["title"]: v["url"] for v in response.context["saved_views"]["views"]}

    assert shown(root.get(views["Mine"])) == {mine.identifier}
    assert shown(root.get(views["Unassigned"])) == {nobodys.identifier}
    assert shown(root.get(views["Blocked"])) == {blocked.identifier}
    assert shown(root.get(views["In review"])) == {review.identifier}
    assert shown(root.get(views["Stale locks"])) == {stale.identifier}
    assert theirs.identifier in shown(response) and held.identifier in shown(response)


def test_the_by_project_view_lists_the_projects_and_filters_by_one(root, company):
    site = factories.ProjectFactory(company=company, name="Website")
    factories.ProjectFactory(company=factories.CompanyFactory(), name="Not ours either way")
    ours = issue(company, "todo", project=site)
    issue(company, "todo")

    response = root.get(ISSUES)
    assert "Website" in [name for _, name in response.context["saved_views"]["projects"]]

    assert shown(root.get(ISSUES, {"project__id__exact": site.pk})) == {ours.identifier}


def test_a_member_sees_only_their_companys_projects_and_issues(
    client, board_user, company, other_company
):
    board_user.user_permissions.add(Permission.objects.get(codename="view_issue"))
    client.force_login(board_user)
    theirs = factories.ProjectFactory(company=other_company, name="Secret plan")
    issue(other_company, "todo", project=theirs)
    ours = issue(company, "todo")

    response = client.get(ISSUES)

    assert shown(response) == {ours.identifier}
    assert "Secret plan" not in response.content.decode()


def test_rows_show_names_badges_labels_the_lock_and_relative_times(root, company):
    agent = factories.AgentFactory(company=company, name="Builder")
    project = factories.ProjectFactory(company=company, name="Website")
    run = factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.RUNNING)
    row = issue(
        company, "in_progress", assignee_agent=agent, project=project, checkout_run=run,
        priority=Priority.CRITICAL,
    )  # fmt: skip
    row.labels.add(factories.LabelFactory(company=company, name="frontend"))
    Issue.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(minutes=3))

    page = root.get(ISSUES).content.decode()

    assert "Builder" in page and "Website" in page and "frontend" in page
    assert "critical" in page.lower() and "In Progress" in page
    assert "3\xa0minutes ago" in page
    assert "Builder · live" in page


def test_the_list_runs_the_same_number_of_queries_for_3_and_30_issues(
    root, company, django_assert_num_queries
):
    agent = factories.AgentFactory(company=company)
    project = factories.ProjectFactory(company=company)
    label = factories.LabelFactory(company=company)

    def make(n):
        for _ in range(n):
            run = factories.HeartbeatRunFactory(agent=agent, status=HeartbeatRun.Status.RUNNING)
            row = issue(
                company, "in_progress", assignee_agent=agent, project=project, checkout_run=run
            )
            row.labels.add(label)

    make(3)
    root.get(ISSUES)  # warm: session, content types
    with django_assert_num_queries(QUERIES) as three:
        root.get(ISSUES)
    make(27)
    with django_assert_num_queries(QUERIES) as thirty:
        assert root.get(ISSUES).context["cl"].result_count == 30
    assert len(three) == len(thirty)


# The request's savepoint and its release; session; user; the saved views' projects; the
# filters' agents, projects and labels pointed at (one each); the filtered count and the total;
# the page of rows (assignee, project, lock run and its agent joined); labels for the page.
QUERIES = 12


# -- bulk actions -----------------------------------------------------------------------------


def act(client, action: str, issues: list[Issue], **args):
    """The action from the "Everything" view (the browser posts to the list's own URL, and the
    action runs on the selected rows of that view)."""
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [i.pk for i in issues], **args}
    return client.post(f"{ISSUES}?status__in=all", data, follow=True)


def test_bulk_assign_asks_for_the_agent_then_assigns_through_the_service(root, company):
    agent = factories.AgentFactory(company=company, name="Builder")
    other = factories.AgentFactory(company=factories.CompanyFactory(), name="Stranger")
    queued = [issue(company), issue(company)]
    started = issue(company, "todo", assignee_agent=agent)

    form = root.post(
        ISSUES, {"action": "bulk_assign", helpers.ACTION_CHECKBOX_NAME: [queued[0].pk]}
    )
    assert form.status_code == 200
    assert form.templates[0].name == "admin/issues/issue/bulk_form.html"
    assert list(form.context["form"].fields["agent"].queryset) == [agent]  # not Stranger
    assert other.name not in form.content.decode()

    response = act(root, "bulk_assign", [*queued, started], agent=agent.pk, apply="1")

    for row in queued:
        row.refresh_from_db()
        assert (row.status, row.assignee_agent_id) == (Status.TODO, agent.pk)
        assert ActivityEvent.objects.filter(issue_id=row.pk, action="issue.assigned").exists()
    said = messages_of(response)
    assert any(m.startswith("assign: done for") and queued[0].identifier in m for m in said)
    [refused] = [m for m in said if "refused" in m]
    assert started.identifier in refused and "from todo" in refused


def test_bulk_reassign_moves_work_to_another_agent(root, company):
    first = factories.AgentFactory(company=company)
    second = factories.AgentFactory(company=company)
    rows = [issue(company, "todo", assignee_agent=first) for _ in range(2)]

    act(root, "bulk_reassign", rows, agent=second.pk, reason="load", apply="1")

    assert {r.assignee_agent_id for r in Issue.objects.filter(pk__in=[r.pk for r in rows])} == {
        second.pk
    }
    assert ActivityEvent.objects.filter(action="issue.reassigned").count() == 2


def test_bulk_cancel_cancels_open_issues_and_reports_the_finished_one(root, company):
    rows = [issue(company), issue(company, "todo"), issue(company, "blocked")]
    done = issue(company, "done")

    response = act(root, "bulk_cancel", [*rows, done], reason="dup", apply="1")

    assert set(
        Issue.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)
    ) == {Status.CANCELLED}
    assert ActivityEvent.objects.filter(action="issue.cancelled").count() == 3
    done.refresh_from_db()
    assert done.status == Status.DONE
    [refused] = [m for m in messages_of(response) if "refused" in m]
    assert refused.startswith(f"cancel refused for {done.identifier}:")


def test_bulk_label_adds_labels_made_on_first_use(root, company):
    rows = [issue(company), issue(company)]

    act(root, "bulk_label", rows, labels="frontend, urgent", apply="1")

    for row in rows:
        assert sorted(row.labels.values_list("name", flat=True)) == ["frontend", "urgent"]
    assert Label.objects.filter(company=company).count() == 2
    assert ActivityEvent.objects.filter(action="issue.updated", issue_id=rows[0].pk).exists()


def test_bulk_set_priority(root, company):
    rows = [issue(company), issue(company, "todo")]

    response = act(root, "bulk_set_priority", rows, priority=Priority.CRITICAL, apply="1")

    assert set(
        Issue.objects.filter(pk__in=[r.pk for r in rows]).values_list("priority", flat=True)
    ) == {Priority.CRITICAL}
    assert any("set priority: done for" in m for m in messages_of(response))


def test_a_bulk_action_without_its_argument_shows_the_form_again(root, company):
    row = issue(company)

    response = act(root, "bulk_set_priority", [row], apply="1")

    assert response.templates[0].name == "admin/issues/issue/bulk_form.html"
    assert response.context["form"].errors
    assert not ActivityEvent.objects.filter(issue_id=row.pk).exists()


def selected_project_option(html: str) -> str:
    select = html[html.index('<select id="pc-project"') : html.index("</select>")]
    [selected] = re.findall(r"<option[^>]*\bselected\b[^>]*>([^<]*)</option>", select)
    return selected


def test_the_project_picker_says_by_project_until_one_is_picked(root, company):
    site = factories.ProjectFactory(company=company, name="Website")
    issue(company, "todo", project=site)

    assert selected_project_option(root.get(ISSUES).content.decode()) == "By project…"
    picked = root.get(ISSUES, {"project__id__exact": site.pk}).content.decode()
    assert selected_project_option(picked) == "Website"


def test_a_bulk_actions_page_is_headed_by_what_it_does_and_to_how_many(root, company):
    picked = [issue(company), issue(company)]

    form = root.post(
        ISSUES,
        {"action": "bulk_set_priority", helpers.ACTION_CHECKBOX_NAME: [i.pk for i in picked]},
    )

    assert re.search(r"<h2[^>]*>\s*Set the priority: 2 issue\(s\)\s*</h2>", form.content.decode())
