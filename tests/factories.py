"""factory-boy factories: the data every test builds on."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.db.models import F
from django.utils import timezone

from agents.delivery import new_webhook_secret
from agents.models import Agent, AgentApiKey, HeartbeatRun, Team, WebhookDelivery, WebhookEndpoint
from companies.models import BoardToken, Company, Membership, User, hash_token, new_secret
from issues.models import Comment, CostEvent, Goal, Issue, Label, Project
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


def live_run(agent: Agent, **fields) -> HeartbeatRun:
    """A heartbeat run of `agent` that is running now with a fresh lease (pass `status=`,
    `lease_expires_at=`, ... to vary it)."""
    fields.setdefault("status", HeartbeatRun.Status.RUNNING)
    fields.setdefault("started_at", timezone.now())
    return HeartbeatRunFactory(agent=agent, **fields)
