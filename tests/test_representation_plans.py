"""The serializers of the hot lists render through `PlannedRepresentationMixin` (DRF's output
without its per-row field machinery, issue 15): what they answer must stay exactly what DRF's
own `to_representation` answers, for every shape of row."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from agents.authentication import agent_actor
from issues.api.inbox import InboxItemSerializer
from issues.api.issues import IssueDetailSerializer, IssueSerializer, LabelSummarySerializer
from issues.models import Issue
from issues.selectors import inbox_lite, inbox_rows
from issues.v1.tasks import TaskSerializer
from tests import factories

pytestmark = pytest.mark.django_db

PLANNED = [IssueSerializer, IssueDetailSerializer, LabelSummarySerializer, InboxItemSerializer,
           TaskSerializer]  # fmt: skip


def drf(serializer_class, instance) -> dict:
    """What DRF itself renders for `instance`."""
    return serializers.Serializer.to_representation(serializer_class(), instance)


@pytest.fixture
def issues(company, agent):
    project = factories.ProjectFactory(company=company)
    labels = [factories.LabelFactory(company=company, name=n) for n in ("ux", "Bug", "api")]
    bare = factories.IssueFactory(company=company)
    full = factories.IssueFactory(
        company=company,
        project=project,
        parent=bare,
        assignee_agent=agent,
        budget_usd=Decimal("12.50"),
        due_at=timezone.now(),
        status="in_progress",
        checkout_run=factories.HeartbeatRunFactory(agent=agent, status="running"),
    )
    full.labels.set(labels)
    full.dependencies.set([bare, factories.IssueFactory(company=company)])
    return [bare, full]


def test_an_issue_list_rendered_from_rows_is_what_drf_renders_from_instances(issues):
    ids = [issue.pk for issue in issues]
    rows = Issue.objects.filter(pk__in=ids).order_by("pk").rows()
    instances = Issue.objects.filter(pk__in=ids).order_by("pk").with_list_relations()

    assert [IssueSerializer(row).data for row in rows] == [
        drf(IssueSerializer, issue) for issue in instances
    ]


def test_a_task_list_rendered_from_rows_is_what_drf_renders_from_instances(issues):
    ids = [issue.pk for issue in issues]
    tasks = Issue.objects.filter(pk__in=ids).order_by("pk").with_spent()
    rows = tasks.rows(with_holder=True)
    instances = tasks.select_related("checkout_run").with_list_relations()

    rendered = [TaskSerializer(row).data for row in rows]
    assert [task["currentRunId"] is not None for task in rendered] == [False, True]
    assert rendered == [drf(TaskSerializer, issue) for issue in instances]


def test_an_inbox_rendered_from_rows_is_what_drf_renders_from_instances(issues, agent):
    rows = inbox_rows(inbox_lite(agent_actor(agent)), limit=100)
    instances = inbox_lite(agent_actor(agent)).select_related("checkout_run")

    rendered = [InboxItemSerializer(row).data for row in rows]
    assert [item["activeRun"] is not None for item in rendered] == [True]  # its live run
    assert rendered == [drf(InboxItemSerializer, issue) for issue in instances]


@pytest.mark.parametrize("serializer_class", PLANNED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("read", ["with_relations", "prefetched", "plain"])
def test_a_planned_serializer_answers_what_drf_answers(serializer_class, read, issues):
    if not issubclass(serializer_class.Meta.model, Issue):
        rows = list(issues[1].labels.all())
    elif read == "with_relations":
        rows = list(Issue.objects.with_relations().filter(pk__in=[i.pk for i in issues]))
    elif read == "prefetched":
        rows = list(Issue.objects.with_list_relations().filter(pk__in=[i.pk for i in issues]))
    else:
        rows = list(Issue.objects.filter(pk__in=[i.pk for i in issues]))

    assert [serializer_class(row).data for row in rows] == [
        drf(serializer_class, row) for row in rows
    ]
