"""factory-boy factories: the data every test builds on."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import Group
from django.db.models import F
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from agents.delivery import new_webhook_secret
from agents.models import (
    Agent,
    AgentApiKey,
    HeartbeatRun,
    Team,
    WakeDelivery,
    WakeupRequest,
    WebhookDelivery,
    WebhookEndpoint,
)
from companies.models import (
    BoardToken,
    Company,
    IdempotencyKey,
    Membership,
    User,
    hash_token,
    new_secret,
)
from issues.models import (
    Approval,
    Comment,
    CostEvent,
    Document,
    DocumentRevision,
    Event,
    Goal,
    Issue,
    Label,
    Project,
)
from issues.services.costs import record_run_usage
from paperclip.actors import SYSTEM


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")
    is_staff = True


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    issue_prefix = factory.Sequence(lambda n: f"C{n:02d}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    company = factory.SubFactory(CompanyFactory)
    role = Membership.Role.OWNER


class HashedTokenFactory(factory.django.DjangoModelFactory):
    """`token` (the plain value) is kept on the instance for the test to use."""

    class Meta:
        abstract = True

    token = factory.LazyAttribute(lambda o: new_secret(o.secret_prefix))
    token_hash = factory.LazyAttribute(lambda o: hash_token(o.token))
    token_prefix = factory.LazyAttribute(lambda o: o.token[:12])

    class Params:
        secret_prefix = "pcx_"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        token = kwargs.pop("token", None)
        obj = super()._create(model_class, *args, **kwargs)
        obj.token = token
        return obj


class BoardTokenFactory(HashedTokenFactory):
    class Meta:
        model = BoardToken

    class Params:
        secret_prefix = "pcb_"

    user = factory.SubFactory(UserFactory)


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Group {n}")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Agent{n}")
    role = Agent.Role.ENGINEER


class AgentApiKeyFactory(HashedTokenFactory):
    class Meta:
        model = AgentApiKey

    class Params:
        secret_prefix = "pcp_"

    agent = factory.SubFactory(AgentFactory)


class HeartbeatRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HeartbeatRun
        skip_postgeneration_save = True

    agent = factory.SubFactory(AgentFactory)
    company = factory.SelfAttribute("agent.company")
    lease_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=5))

    @factory.post_generation
    def report_usage(run, create, extracted, **kwargs):
        """A run made with `usage` has reported it, as its finish does: its cost event."""
        if create and run.usage:
            record_run_usage(SYSTEM, run, run.usage)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Project {n}")


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goal

    company = factory.SubFactory(CompanyFactory)
    title = factory.Sequence(lambda n: f"Goal {n}")


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"label-{n}")


class IssueFactory(factory.django.DjangoModelFactory):
    """An issue numbered from its company's counter, like the service does it.

    Pass `status=` to start elsewhere than backlog (factories may set the initial state; the
    lifecycle after that goes through the API).
    """

    class Meta:
        model = Issue

    company = factory.SubFactory(CompanyFactory)
    title = factory.Sequence(lambda n: f"Issue {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        company = kwargs["company"]
        Company.objects.filter(pk=company.pk).update(issue_counter=F("issue_counter") + 1)
        company.refresh_from_db(fields=["issue_counter"])
        kwargs.setdefault("number", company.issue_counter)
        kwargs.setdefault("identifier", f"{company.issue_prefix}-{kwargs['number']}")
        return super()._create(model_class, *args, **kwargs)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    issue = factory.SubFactory(IssueFactory)
    company = factory.SelfAttribute("issue.company")
    body = factory.Sequence(lambda n: f"Comment {n}")


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    company = factory.SubFactory(CompanyFactory)
    url = factory.Sequence(lambda n: f"https://hooks.example.com/{n}")
    events = factory.LazyFunction(lambda: ["*"])
    secret = factory.LazyFunction(new_webhook_secret)


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    """A logged attempt of an `issue.created` event (pass `status=`, `attempt=` to vary it)."""

    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    company = factory.SelfAttribute("endpoint.company")
    event_id = factory.Sequence(lambda n: f"evt_{n:026d}")
    event_type = "issue.created"
    payload = factory.LazyAttribute(lambda d: {"id": d.event_id, "type": d.event_type})


class CostEventFactory(factory.django.DjangoModelFactory):
    """A cost as reported (`POST .../cost-events`), without the budget checks a report makes."""

    class Meta:
        model = CostEvent

    agent = factory.SubFactory(AgentFactory)
    company = factory.SelfAttribute("agent.company")
    provider = "anthropic"
    model = "claude-sonnet-4"
    input_tokens = 1000
    output_tokens = 200
    cost_cents = 10


class WakeupRequestFactory(factory.django.DjangoModelFactory):
    """A wake by the board that started its own run."""

    class Meta:
        model = WakeupRequest

    run = factory.SubFactory(HeartbeatRunFactory)
    agent = factory.SelfAttribute("run.agent")
    company = factory.SelfAttribute("run.company")
    source = HeartbeatRun.Source.ON_DEMAND
    reason = "manual"
    requested_by_type = "system"
    requested_by_id = "system"


class WakeDeliveryFactory(factory.django.DjangoModelFactory):
    """One POST of a run's wake to its agent's HTTP adapter, answered 200."""

    class Meta:
        model = WakeDelivery

    run = factory.SubFactory(HeartbeatRunFactory)
    attempt = 1
    url = "https://agent.example.com/wake"
    status_code = 200
    succeeded = True


class DocumentFactory(factory.django.DjangoModelFactory):
    """An issue's document with `revisions` revisions (default 1), the newest its body."""

    class Meta:
        model = Document
        skip_postgeneration_save = True

    issue = factory.SubFactory(IssueFactory)
    company = factory.SelfAttribute("issue.company")
    key = factory.Sequence(lambda n: f"doc-{n}")
    title = "Plan"
    body = "v1"

    @factory.post_generation
    def revisions(document, create, extracted, **kwargs):
        if not create:
            return
        for number in range(1, (extracted or 1) + 1):
            document.latest_revision = DocumentRevision.objects.create(
                document=document,
                number=number,
                title=document.title,
                body=f"line one\nv{number}\n",
                change_summary=f"edit {number}",
                **kwargs,
            )
        document.body = document.latest_revision.body
        document.save(update_fields=["latest_revision", "body"])


class ApprovalFactory(factory.django.DjangoModelFactory):
    """A pending hire requested by an agent (pass `issues=[...]` to link issues)."""

    class Meta:
        model = Approval
        skip_postgeneration_save = True

    requested_by_agent = factory.SubFactory(AgentFactory)
    company = factory.SelfAttribute("requested_by_agent.company")
    type = Approval.Type.HIRE_AGENT
    payload = factory.LazyFunction(lambda: {"name": "Scout", "role": "qa"})

    @factory.post_generation
    def issues(approval, create, extracted, **kwargs):
        if create and extracted:
            approval.issues.add(*extracted)


def live_run(agent: Agent, **fields) -> HeartbeatRun:
    """A heartbeat run of `agent` that is running now with a fresh lease (pass `status=`,
    `lease_expires_at=`, ... to vary it)."""
    fields.setdefault("status", HeartbeatRun.Status.RUNNING)
    fields.setdefault("started_at", timezone.now())
    return HeartbeatRunFactory(agent=agent, **fields)


class EventFactory(factory.django.DjangoModelFactory):
    """An `issue.created` event in the outbox, not yet dispatched (pass `dispatched_at=`)."""

    class Meta:
        model = Event

    company = factory.SubFactory(CompanyFactory)
    type = "issue.created"
    payload = factory.LazyAttribute(lambda e: {"type": e.type})


class IdempotencyKeyFactory(factory.django.DjangoModelFactory):
    """A kept answer to a POST with an `Idempotency-Key`, valid for the next 24 hours."""

    class Meta:
        model = IdempotencyKey

    owner = "agent:agt_test"
    key = factory.Sequence(lambda n: f"key-{n}")
    fingerprint = "0" * 64
    state = IdempotencyKey.State.DONE
    response_status = 201
    response_data = factory.LazyFunction(lambda: {"id": "x"})
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


class TaskResultFactory(factory.django.DjangoModelFactory):
    """A webhook delivery task the database task backend ran to success just now (pass
    `status=`, `finished_at=`)."""

    class Meta:
        model = DBTaskResult

    status = TaskResultStatus.SUCCESSFUL
    task_path = "agents.delivery.deliver_webhook"
    args_kwargs = factory.LazyFunction(lambda: {"args": ["whd_x"], "kwargs": {}})
    backend_name = "default"
    run_after = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    exception_class_path = ""
    traceback = ""
