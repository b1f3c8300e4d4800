"""`/v1` bulk (reference 003, DESIGN §8): one verb on up to 500 tasks, each its own
transaction. The answer lists every task's outcome in the order given (`task` or an `/v1`
error); a refused task never undoes another; duplicates and ids naming nothing the company has
get their own `duplicate` / `not_found` entry; a dry run runs every check and writes nothing."""

from __future__ import annotations

import pytest

from companies.models import ActivityEvent
from issues.models import Issue, Label, Priority, Status
from issues.services import bulk
from tests import factories

pytestmark = pytest.mark.django_db

NOT_FOUND = {"code": "not_found", "message": "Not found", "details": None}


def bulk_url(company) -> str:
    return f"/v1/companies/{company.pk}/issues/bulk"


def post(client, company, ids, op, args=None, **extra):
    body = {"ids": ids, "op": op, **extra}
    if args is not None:
        body["args"] = args
    return client.post(bulk_url(company), body, format="json")


def outcomes(response) -> list[tuple[str, bool, str]]:
    """(id, ok, the task's status or the error's code) of each entry, in order."""
    assert response.status_code == 200, response.json()
    return [
        (
            entry["id"],
            entry["ok"],
            entry["task"]["status"] if entry["ok"] else entry["error"]["code"],
        )
        for entry in response.json()["data"]
    ]


def validation_details(response) -> dict:
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return error["details"]


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Peer")


def queued(company, **kwargs) -> Issue:
    return factories.IssueFactory(company=company, status=Status.BACKLOG, **kwargs)


# -- outcomes per task ------------------------------------------------------------------------


def test_one_refused_task_leaves_the_others_assigned(board, company, agent, peer):
    first, taken, last = queued(company), None, queued(company)
    taken = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=peer)

    response = post(board, company, [first.pk, taken.pk, last.pk], "assign", {"agentId": agent.pk})

    assert outcomes(response) == [
        (first.pk, True, "assigned"),
        (taken.pk, False, "invalid_transition"),
        (last.pk, True, "assigned"),
    ]
    body = response.json()
    assert body["data"][1]["error"] == {
        "code": "invalid_transition",
        "message": "Cannot assign a task that is assigned",
        "details": {
            "status": "assigned",
            "action": "assign",
            "allowedActions": ["reassign", "cancel"],
        },
    }
    assert body["data"][0]["task"]["assignedAgentId"] == agent.pk
    assert body["meta"] == {
        "requestId": response.headers["X-Request-Id"],
        "succeeded": 2,
        "failed": 1,
        "dryRun": False,
    }
    assigned = Issue.objects.filter(assignee_agent=agent).values_list("pk", flat=True)
    assert sorted(assigned) == sorted([first.pk, last.pk])
    assert Issue.objects.get(pk=taken.pk).assignee_agent == peer
    logged = ActivityEvent.objects.filter(action="issue.assigned").values_list(
        "issue_id", flat=True
    )
    assert sorted(logged) == sorted([first.pk, last.pk])


def test_outcomes_come_in_the_order_given_by_id_or_identifier(board, company):
    tasks = [queued(company) for _ in range(4)]
    refs = [tasks[2].identifier, tasks[0].pk, tasks[3].pk, tasks[1].identifier.lower()]

    response = post(board, company, refs, "cancel", {"reason": "scope cut"})

    assert [entry["id"] for entry in response.json()["data"]] == refs
    assert [entry["task"]["id"] for entry in response.json()["data"]] == [
        tasks[2].pk,
        tasks[0].pk,
        tasks[3].pk,
        tasks[1].pk,
    ]
    assert set(Issue.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    assert ActivityEvent.objects.filter(action="issue.cancelled").count() == 4


def test_another_companys_task_and_unknown_ids_are_not_found_entries(board, company, other_company):
    mine, theirs = queued(company), queued(other_company)
    refs = [theirs.pk, "iss_00000000000000000000000000", "nonsense", theirs.identifier, mine.pk]

    response = post(board, company, refs, "cancel")

    assert outcomes(response) == [
        (theirs.pk, False, "not_found"),
        ("iss_00000000000000000000000000", False, "not_found"),
        ("nonsense", False, "not_found"),
        (theirs.identifier, False, "not_found"),
        (mine.pk, True, "cancelled"),
    ]
    assert response.json()["data"][0]["error"] == NOT_FOUND
    assert Issue.objects.get(pk=theirs.pk).status == Status.BACKLOG


def test_a_task_listed_twice_runs_once_and_the_repeat_is_a_duplicate_entry(board, company):
    task = queued(company)

    response = post(board, company, [task.pk, task.identifier, task.pk], "cancel")

    assert outcomes(response) == [
        (task.pk, True, "cancelled"),
        (task.identifier, False, "duplicate"),
        (task.pk, False, "duplicate"),
    ]
    assert response.json()["data"][1]["error"]["details"] == {"id": task.pk}
    assert response.json()["meta"]["failed"] == 2
    assert ActivityEvent.objects.filter(action="issue.cancelled").count() == 1


def test_reassign_to_the_same_agent_is_that_tasks_409(board, company, agent, peer):
    moving = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    staying = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=peer)

    response = post(
        board, company, [moving.pk, staying.pk], "reassign", {"toAgentId": peer.pk, "reason": "fit"}
    )

    assert outcomes(response) == [
        (moving.pk, True, "assigned"),
        (staying.pk, False, "already_assigned"),
    ]
    assert response.json()["data"][0]["task"]["statusReason"] == "reassigned"
    assert Issue.objects.get(pk=moving.pk).assignee_agent == peer


def test_a_finished_task_refuses_edits_as_task_frozen(board, company):
    done = factories.IssueFactory(company=company, status=Status.DONE)
    open_ = queued(company)

    response = post(board, company, [done.pk, open_.pk], "set_priority", {"priority": "critical"})

    assert outcomes(response) == [(done.pk, False, "task_frozen"), (open_.pk, True, "queued")]
    assert response.json()["data"][1]["task"]["priority"] == "critical"
    assert Issue.objects.get(pk=open_.pk).priority == Priority.CRITICAL
    assert Issue.objects.get(pk=done.pk).priority == Priority.MEDIUM


def test_label_adds_names_made_on_first_use_and_unlabel_removes_them(board, company):
    bug = factories.LabelFactory(company=company, name="bug")
    first, second = queued(company), queued(company)
    first.labels.set([bug])

    labelled = post(board, company, [first.pk, second.pk], "label", {"labels": ["urgent", "bug"]})

    assert [entry["task"]["labels"] for entry in labelled.json()["data"]] == [
        ["bug", "urgent"],
        ["bug", "urgent"],
    ]
    assert Label.objects.filter(company=company, name="urgent").count() == 1

    unlabelled = post(board, company, [first.pk, second.pk], "unlabel", {"labels": ["BUG"]})

    assert [entry["task"]["labels"] for entry in unlabelled.json()["data"]] == [
        ["urgent"],
        ["urgent"],
    ]
    assert list(second.labels.values_list("name", flat=True)) == ["urgent"]


def test_an_agent_is_refused_per_task_where_the_service_refuses_it(agent_client, company, peer):
    not_mine = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=peer)

    response = post(agent_client, company, [not_mine.pk], "cancel")

    assert outcomes(response) == [(not_mine.pk, False, "forbidden")]
    assert Issue.objects.get(pk=not_mine.pk).status == Status.TODO


# -- dry run ----------------------------------------------------------------------------------


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(board, company, agent, peer):
    free = queued(company)
    taken = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=peer)

    response = post(
        board, company, [free.pk, taken.pk], "assign", {"agentId": agent.pk}, dryRun=True
    )

    assert outcomes(response) == [
        (free.pk, True, "assigned"),
        (taken.pk, False, "invalid_transition"),
    ]
    assert response.json()["meta"]["dryRun"] is True
    assert response.json()["data"][0]["task"]["assignedAgentId"] == agent.pk
    assert Issue.objects.get(pk=free.pk).assignee_agent is None
    assert Issue.objects.get(pk=free.pk).status == Status.BACKLOG
    assert not ActivityEvent.objects.exists()


def test_a_dry_run_makes_no_label(board, company):
    task = queued(company)

    response = post(board, company, [task.pk], "label", {"labels": ["new"]}, dryRun=True)

    assert response.json()["data"][0]["task"]["labels"] == ["new"]
    assert not Label.objects.exists()
    assert not task.labels.exists()
    assert not ActivityEvent.objects.exists()


# -- the request as a whole -------------------------------------------------------------------


def test_more_than_500_ids_is_400(board, company):
    task = queued(company)

    details = validation_details(post(board, company, [task.pk] * 501, "cancel"))

    assert list(details) == ["ids"]
    assert Issue.objects.get(pk=task.pk).status == Status.BACKLOG


def test_500_ids_are_accepted(board, company):
    task = queued(company)

    response = post(board, company, [task.pk] * 500, "cancel", dryRun=True)

    assert response.json()["meta"] == {
        "requestId": response.headers["X-Request-Id"],
        "succeeded": 1,
        "failed": 499,
        "dryRun": True,
    }


def test_no_ids_is_400(board, company):
    assert list(validation_details(post(board, company, [], "cancel"))) == ["ids"]


def test_an_unknown_op_is_400_naming_it(board, company):
    task = queued(company)

    details = validation_details(post(board, company, [task.pk], "delete"))

    assert list(details) == ["op"]
    assert Issue.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("assign", {}, "agentId"),
        ("assign", {"agentId": "agt_00000000000000000000000000"}, "agentId"),
        ("reassign", {"agentId": "x"}, "agentId"),
        ("label", {"labels": []}, "labels"),
        ("set_priority", {"priority": "urgent"}, "priority"),
        ("cancel", {"reason": "x", "force": True}, "force"),
    ],
    ids=["missing", "unknown agent", "unknown field", "no labels", "bad priority", "extra"],
)
def test_bad_args_are_400_naming_the_field_and_nothing_runs(board, company, op, args, field):
    task = queued(company)

    details = validation_details(post(board, company, [task.pk], op, args))

    assert field in details["args"]
    assert not ActivityEvent.objects.exists()


def test_another_companys_agent_is_not_an_agent_to_assign(board, company, other_agent):
    task = queued(company)

    details = validation_details(
        post(board, company, [task.pk], "assign", {"agentId": other_agent.pk})
    )

    assert list(details["args"]) == ["agentId"]


def test_an_unknown_body_field_is_400(board, company):
    task = queued(company)

    details = validation_details(post(board, company, [task.pk], "cancel", atomic=True))

    assert details == {"atomic": ["Unknown field."]}


def test_another_companys_board_gets_404_and_changes_nothing(other_board, company):
    task = queued(company)

    response = post(other_board, company, [task.pk], "cancel")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Issue.objects.get(pk=task.pk).status == Status.BACKLOG


# -- one transaction per task, not per request ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_crash_on_one_task_keeps_the_tasks_committed_before_it(board, company, monkeypatch):
    """The request is not one transaction: a task done stays done even when a later one fails
    in a way no entry can name (a bug: 500)."""
    first, second = queued(company), queued(company)

    def crash_on_second(*, actor, issue, reason=""):
        if issue.pk == second.pk:
            raise RuntimeError("a bug")
        return bulk.issue_cancel(actor=actor, issue=issue, reason=reason)

    monkeypatch.setitem(bulk.OPS, "cancel", bulk.Op("cancel", crash_on_second))
    board.raise_request_exception = False

    response = post(board, company, [first.pk, second.pk], "cancel")

    assert response.status_code == 500
    assert Issue.objects.get(pk=first.pk).status == Status.CANCELLED
    assert Issue.objects.get(pk=second.pk).status == Status.BACKLOG
