"""The issue page lists its documents (with revision history) and attachments (download links);
approvals are a queue the board decides from, through the service; goals, projects and labels
save and delete through the record services, so each write is logged."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from agents.models import HeartbeatRun, WakeupRequest
from companies.authentication import board_actor
from companies.models import ActivityEvent, Membership
from issues import services
from issues.models import Approval, Document, Goal, Issue, Label, Project
from tests import factories
from tests.admin import buttons, form_data, messages_of

APPROVALS = reverse("admin:issues_approval_changelist")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def issue_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


def document_url(document: Document) -> str:
    return reverse("admin:issues_document_change", args=[document.pk])


def approval_url(approval: Approval) -> str:
    return reverse("admin:issues_approval_change", args=[approval.pk])


def write_document(issue: Issue, user, revisions: int) -> Document:
    """A `plan` document with `revisions` revisions, written as the API writes them."""
    actor = board_actor(user)
    document, _ = services.document_put(
        actor=actor, issue=issue, key="plan", title="Plan", body="v1", change_summary="first"
    )
    for number in range(2, revisions + 1):
        document, _ = services.document_put(
            actor=actor,
            issue=issue,
            key="plan",
            title="Plan",
            body=f"v{number}",
            change_summary=f"edit {number}",
            base_revision_id=document.latest_revision_id,
        )
    return document


def inline_rows(response, model) -> list:
    """The objects an inline of `model` shows on a change page, in page order."""
    [inline] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is model]
    return [form.instance for form in inline.formset.forms]


# -- documents and attachments on the issue page ---------------------------------------------


def test_issue_page_shows_documents_and_attachments_with_a_download_link(
    staff, company, admin_user
):
    issue = factories.IssueFactory(company=company)
    document = write_document(issue, admin_user, revisions=2)
    attachment = services.attachment_create(
        actor=board_actor(admin_user),
        issue=issue,
        upload=SimpleUploadedFile("notes.txt", b"hello, board", content_type="text/plain"),
    )

    response = staff.get(issue_url(issue))

    assert response.status_code == 200
    essentials = response.context["essentials"]
    assert [row["document"] for row in essentials["documents"]] == [document]
    assert [row["attachment"] for row in essentials["attachments"]] == [attachment]
    page = response.content.decode()
    history = reverse("admin:issues_document_change", args=[quote(document.pk)])
    assert f'href="{history}" title="Plan">plan</a> r2' in page
    download = f"/api/attachments/{attachment.pk}/content"
    assert f'href="{download}"' in page
    for text in ("notes.txt", "text/plain", attachment.sha256, filesizeformat(12)):
        assert text in page
    # The link works for the logged-in board user: the API accepts the admin session.
    file = staff.get(download)
    assert file.status_code == 200
    assert b"".join(file.streaming_content) == b"hello, board"
    assert file["X-Content-Type-Options"] == "nosniff"


def test_issue_page_shows_the_latest_revision_number(staff, company, admin_user):
    issue = factories.IssueFactory(company=company)
    write_document(issue, admin_user, revisions=3)

    response = staff.get(issue_url(issue))

    [row] = response.context["essentials"]["documents"]
    assert (row["document"].key, row["revision"].number) == ("plan", 3)
    assert re.search(
        r">plan</a> r3 \(<a href=\"[^\"]+/diff/\">last change</a>\)", response.content.decode()
    )


def test_issue_with_documents_still_saves_through_the_service(staff, company, admin_user):
    issue = factories.IssueFactory(company=company, title="Old")
    write_document(issue, admin_user, revisions=1)
    events = ActivityEvent.objects.count()

    data = form_data(staff.get(issue_url(issue))) | {"title": "New"}
    response = staff.post(issue_url(issue), data)

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.title, issue.version) == ("New", 2)
    assert Document.objects.get().latest_revision.number == 1  # listed, never written here
    assert ActivityEvent.objects.count() == events + 1
    assert ActivityEvent.objects.latest("created_at").action == "issue.updated"


def test_document_page_lists_its_revisions_newest_first_and_edits_nothing(
    staff, company, admin_user
):
    issue = factories.IssueFactory(company=company)
    document = write_document(issue, admin_user, revisions=3)

    response = staff.get(document_url(document))

    assert response.status_code == 200
    revisions = inline_rows(response, type(document.latest_revision))
    assert [r.number for r in revisions] == [3, 2, 1]
    assert [r.change_summary for r in revisions] == ["edit 3", "edit 2", "first"]
    page = response.content.decode()
    assert reverse("admin:issues_issue_change", args=[quote(issue.pk)]) in page  # as Django links
    for revision in revisions:  # each against the one before it
        diff = reverse(
            "admin:issues_issue_revision_diff", args=[quote(issue.pk), quote(revision.pk)]
        )
        assert diff in page
    assert 'name="body"' not in page and 'name="_save"' not in page
    assert staff.post(document_url(document), {"title": "Hacked"}).status_code == 403
    assert Document.objects.get().title == "Plan"


# -- approvals -------------------------------------------------------------------------------


def approval_of(company, agent, status="pending", **kwargs) -> Approval:
    return Approval.objects.create(
        company=company, type="hire_agent", status=status, requested_by_agent=agent, **kwargs
    )


def act(client, action: str, *approvals: Approval):
    return client.post(
        APPROVALS,
        {"action": action, "_selected_action": [a.pk for a in approvals]},
        follow=True,
    )


def test_the_approvals_queue_opens_on_pending_and_lists_pending_first_then_newest(
    staff, company, agent
):
    old_pending = approval_of(company, agent)
    approved = approval_of(company, agent, status="approved")
    new_pending = approval_of(company, agent)
    linked = [factories.IssueFactory(company=company) for _ in range(2)]
    new_pending.issues.add(*linked)
    rejected = approval_of(company, agent, status="rejected")

    queue = staff.get(APPROVALS)
    everything = staff.get(APPROVALS, {"queue": "all"})

    assert queue.status_code == 200
    assert list(queue.context["cl"].result_list) == [new_pending, old_pending]
    assert list(everything.context["cl"].result_list) == [
        new_pending,
        old_pending,
        rejected,
        approved,
    ]
    page = queue.content.decode()
    assert all(f">{issue.identifier}</a>" in page for issue in linked)  # linked issues, named
    assert agent.name in page  # the requester column


def test_approvals_changelist_filters_by_status_and_type(staff, company, agent):
    approval_of(company, agent)
    wanted = approval_of(company, agent, status="approved")
    Approval.objects.create(company=company, type="approve_ceo_strategy", status="approved")

    response = staff.get(APPROVALS, {"status__exact": "approved", "type__exact": "hire_agent"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]


def test_approve_action_approves_logs_and_wakes_the_requester(staff, company, agent, admin_user):
    issue = factories.IssueFactory(company=company)
    approval = approval_of(company, agent, payload={"name": "Designer"})
    approval.issues.add(issue)

    response = act(staff, "approve_selected", approval)

    assert response.status_code == 200
    assert messages_of(response) == ["Approve: 1 done."]
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by_user) == ("approved", admin_user)
    assert approval.decided_at is not None
    row = ActivityEvent.objects.get(action="approval.approved")
    assert (row.action, row.entity_id, row.actor_type, row.actor_id) == (
        "approval.approved",
        approval.pk,
        "user",
        admin_user.pk,
    )
    run = HeartbeatRun.objects.get(agent=agent)
    assert (run.context["approvalId"], run.context["approvalStatus"]) == (approval.pk, "approved")
    assert run.context["linkedIssueIds"] == [issue.pk]


def test_approve_action_again_changes_nothing_and_logs_nothing(staff, company, agent):
    approval = approval_of(company, agent, payload={"name": "Designer"})
    act(staff, "approve_selected", approval)
    approval.refresh_from_db()
    decided_at = approval.decided_at

    response = act(staff, "approve_selected", approval)

    assert messages_of(response) == ["1 already approved: unchanged."]
    approval.refresh_from_db()
    assert (approval.status, approval.decided_at) == ("approved", decided_at)
    assert ActivityEvent.objects.count() == 2  # approval.approved, and agent.created by the hire
    assert WakeupRequest.objects.count() == 1


def test_reject_action_refuses_a_decided_approval_and_decides_the_rest(staff, company, agent):
    approved = approval_of(company, agent, status="approved")
    pending = approval_of(company, agent)

    response = act(staff, "reject_selected", approved, pending)

    assert messages_of(response) == [
        f"Reject refused for {approved.pk} (hire_agent): it is approved.",
        "Reject: 1 done.",
    ]
    approved.refresh_from_db()
    pending.refresh_from_db()
    assert (approved.status, pending.status) == ("approved", "rejected")
    assert list(ActivityEvent.objects.values_list("action", "entity_id")) == [
        ("approval.rejected", pending.pk)
    ]


def test_request_revision_action_sends_it_back_to_the_requester(staff, company, agent):
    approval = approval_of(company, agent)

    response = act(staff, "request_revision_selected", approval)

    assert messages_of(response) == ["Request revision: 1 done."]
    approval.refresh_from_db()
    assert approval.status == "revision_requested"
    assert ActivityEvent.objects.get().action == "approval.revision_requested"


def test_approval_page_offers_the_three_decisions_and_no_status_field(
    staff, company, agent, board_user
):
    approval = approval_of(company, agent, payload={"name": "Designer"})
    services.approval_comment_create(
        actor=board_actor(board_user), approval=approval, body="Why now?"
    )

    response = staff.get(approval_url(approval))

    assert response.status_code == 200
    assert buttons(response) == ["approve", "reject", "request_revision"]
    page = response.content.decode()
    assert 'name="status"' not in page  # read-only: never a free field
    assert "Why now?" in page and "Designer" in page
    assert staff.get(reverse("admin:issues_approval_add")).status_code == 403


def test_approve_button_decides_through_the_service_with_the_note(
    staff, company, agent, admin_user
):
    approval = approval_of(company, agent, payload={"name": "Designer"})
    url = approval_url(approval)

    data = form_data(staff.get(url)) | {"note": "Welcome aboard", "_fsm_transition_to": "approve"}
    response = staff.post(url, data, follow=True)

    assert "Approve: done." in messages_of(response)
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note, approval.decided_by_user) == (
        "approved",
        "Welcome aboard",
        admin_user,
    )
    assert ActivityEvent.objects.get(action="approval.approved").details["note"] == "Welcome aboard"
    assert buttons(staff.get(url)) == []  # decided: nothing left to press


def test_a_read_only_seat_cannot_decide(client, company, agent):
    membership = factories.MembershipFactory(company=company, role=Membership.Role.VIEWER)
    viewer = membership.user
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_approval", "change_approval"])
    )
    client.force_login(viewer)
    approval = approval_of(company, agent)

    response = act(client, "approve_selected", approval)

    assert messages_of(response) == [
        f"Approve refused for {approval.pk} (hire_agent): "
        "Your membership in this company is read-only."
    ]
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert not ActivityEvent.objects.exists()


def test_staff_sees_only_their_companies_approvals(client, board_user, company, agent, other_agent):
    board_user.user_permissions.add(Permission.objects.get(codename="view_approval"))
    client.force_login(board_user)
    ours = approval_of(company, agent)
    theirs = approval_of(other_agent.company, other_agent)

    response = client.get(APPROVALS)

    assert list(response.context["cl"].result_list) == [ours]
    assert client.get(approval_url(theirs)).status_code == 302  # "does not exist"


# -- goals, projects, labels -----------------------------------------------------------------


def test_goal_created_in_the_admin_logs_goal_created(staff, company, admin_user):
    parent = factories.GoalFactory(company=company)
    add = reverse("admin:issues_goal_add")

    data = form_data(staff.get(add))
    data |= {"company": company.pk, "title": "Ship v2", "level": "team", "parent": parent.pk}
    response = staff.post(add, data)

    assert response.status_code == 302
    goal = Goal.objects.get(title="Ship v2")
    assert (goal.company, goal.level, goal.parent) == (company, "team", parent)
    row = ActivityEvent.objects.get()
    assert (row.action, row.entity_id, row.actor_id, row.details) == (
        "goal.created",
        goal.pk,
        admin_user.pk,
        {"name": "Ship v2"},
    )


def test_goal_edited_in_the_admin_logs_what_changed(staff, company):
    goal = factories.GoalFactory(company=company, title="Old")
    url = reverse("admin:issues_goal_change", args=[goal.pk])

    data = form_data(staff.get(url)) | {"title": "New", "status": "active"}
    response = staff.post(url, data)

    assert response.status_code == 302
    goal.refresh_from_db()
    assert (goal.title, goal.status) == ("New", "active")
    assert ActivityEvent.objects.get(action="goal.updated").details == {
        "changes": {
            "title": {"from": "Old", "to": "New"},
            "status": {"from": "planned", "to": "active"},
        }
    }


def test_a_goal_cycle_is_refused_with_the_services_reason(staff, company):
    root = factories.GoalFactory(company=company)
    child = factories.GoalFactory(company=company, parent=root)
    url = reverse("admin:issues_goal_change", args=[root.pk])

    data = form_data(staff.get(url)) | {"parent": child.pk}
    response = staff.post(url, data, follow=True)

    assert messages_of(response) == [
        "Validation failed: parentId: A goal cannot be its own ancestor."
    ]
    root.refresh_from_db()
    assert root.parent is None
    assert not ActivityEvent.objects.exists()


def test_project_created_in_the_admin_keeps_its_goals_and_logs(staff, company, agent):
    goals = [factories.GoalFactory(company=company) for _ in range(2)]
    add = reverse("admin:issues_project_add")

    data = form_data(staff.get(add))
    data |= {
        "company": company.pk,
        "name": "Website",
        "status": "in_progress",
        "lead_agent": agent.pk,
        "goals": [g.pk for g in goals],
    }
    response = staff.post(add, data)

    assert response.status_code == 302
    project = Project.objects.get()
    assert (project.status, project.lead_agent, set(project.goals.all())) == (
        "in_progress",
        agent,
        set(goals),
    )
    assert ActivityEvent.objects.get().action == "project.created"


def test_label_name_taken_in_any_case_is_a_form_error(staff, company):
    factories.LabelFactory(company=company, name="Bug")
    add = reverse("admin:issues_label_add")

    data = form_data(staff.get(add)) | {"company": company.pk, "name": "bug"}
    response = staff.post(add, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "A label with this name already exists."
    ]
    assert Label.objects.count() == 1
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize(
    ("model", "factory"),
    [(Goal, factories.GoalFactory), (Project, factories.ProjectFactory), (Label, None)],
    ids=["goal", "project", "label"],
)
def test_deleting_a_record_in_the_admin_logs_it(staff, company, model, factory):
    record = (factory or factories.LabelFactory)(company=company)
    name = model._meta.model_name
    url = reverse(f"admin:issues_{name}_delete", args=[record.pk])

    response = staff.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not model.objects.exists()
    row = ActivityEvent.objects.get()
    assert (row.action, row.entity_id) == (f"{name}.deleted", record.pk)


def test_bulk_deleting_labels_logs_each(staff, company):
    labels = [factories.LabelFactory(company=company) for _ in range(2)]

    response = staff.post(
        reverse("admin:issues_label_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [label.pk for label in labels],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert not Label.objects.exists()
    assert sorted(ActivityEvent.objects.values_list("entity_id", flat=True)) == sorted(
        label.pk for label in labels
    )
    assert set(ActivityEvent.objects.values_list("action", flat=True)) == {"label.deleted"}
