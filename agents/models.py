"""Agents, their API keys, teams and runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from companies.models import ActivityEvent, Company, HashedToken
from paperclip.actors import Actor
from paperclip.errors import NotAllowed
from paperclip.ids import PrefixedIdField
from paperclip.tenancy import CompanyScopedQuerySet, unique_name_per_company
from paperclip.timestamps import OneClockTimestamps

# A chain of command deeper than this is a bug (cycles are refused on write); stop walking.
MAX_CHAIN_DEPTH = 64


class Team(OneClockTimestamps, models.Model):
    id = PrefixedIdField(prefix="tm")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [unique_name_per_company("team")]

    def __str__(self) -> str:
        return self.name


def this_month() -> tuple[datetime, datetime]:
    """The current UTC calendar month, [start, end): what monthly budgets count (DESIGN §10)."""
    start = timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def whole_cents(cents: Decimal) -> int:
    """Cents as the wire writes them (costs keep fractions of a cent)."""
    return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class AgentQuerySet(CompanyScopedQuerySet):
    def with_spend(self):
        """Each agent with its spend this month (`spent_monthly_cents`), in the same query."""
        start, end = this_month()
        in_month = models.Q(cost_events__occurred_at__gte=start, cost_events__occurred_at__lt=end)
        total = Sum("cost_events__cost_cents", filter=in_month)
        return self.annotate(
            spent_cents_this_month=Coalesce(
                total, models.Value(0), output_field=models.DecimalField()
            )
        )


# How the API and the activity log write a process agent's `env` values: the board sets them,
# nobody reads them back (they may hold credentials; every member of the company reads agents).
SECRET_MASK = "********"


def masked_adapter_config(config: Any) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("env"), dict):
        return config
    return {**config, "env": dict.fromkeys(config["env"], SECRET_MASK)}


class PauseReason(models.TextChoices):
    MANUAL = "manual"
    BUDGET = "budget"


class Agent(OneClockTimestamps, ConcurrentTransitionMixin, models.Model):
    class Role(models.TextChoices):
        CEO = "ceo", "CEO"
        CTO = "cto", "CTO"
        CMO = "cmo", "CMO"
        CFO = "cfo", "CFO"
        SECURITY = "security", "Security"
        ENGINEER = "engineer", "Engineer"
        DESIGNER = "designer", "Designer"
        PM = "pm", "PM"
        QA = "qa", "QA"
        DEVOPS = "devops", "DevOps"
        RESEARCHER = "researcher", "Researcher"
        GENERAL = "general", "General"

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        IDLE = "idle"
        RUNNING = "running"
        ERROR = "error"
        PENDING_APPROVAL = "pending_approval"
        TERMINATED = "terminated"

    class Adapter(models.TextChoices):
        PROCESS = "process"
        HTTP = "http"
        CLAUDE_LOCAL = "claude_local"
        CODEX_LOCAL = "codex_local"

    id = PrefixedIdField(prefix="agt")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.GENERAL)
    title = models.CharField(max_length=200, blank=True, default="")
    reports_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="agents"
    )
    status = FSMField(max_length=32, choices=Status.choices, default=Status.ACTIVE, protected=True)
    capabilities = models.TextField(blank=True, default="")
    adapter_type = models.CharField(max_length=32, choices=Adapter.choices, default=Adapter.PROCESS)
    adapter_config = models.JSONField(default=dict, blank=True)
    permissions = models.JSONField(default=dict, blank=True)
    # Signs wake deliveries the Standard Webhooks way (`whsec_...`); shown once, rotatable.
    webhook_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    budget_monthly_cents = models.PositiveIntegerField(default=0)
    # Why a paused agent is paused: the board (`manual`) or its budget (`budget`, DESIGN §10), whose
    # stop the board lifts by approving the override or raising the budget.
    pause_reason = models.CharField(
        max_length=16, choices=PauseReason.choices, blank=True, default="", editable=False
    )
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # Names are matched case-insensitively (@-mentions), so they are unique that way.
            unique_name_per_company("agent")
        ]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def spent_cents_this_month(self) -> Decimal:
        """What its cost events this month add up to (`AgentQuerySet.with_spend` when read
        through it, else one query)."""
        return self.cost_events.between(*this_month()).cents()

    @property
    def spent_monthly_cents(self) -> int:
        return whole_cents(self.spent_cents_this_month)

    def logged_value(self, field: str, value: Any) -> Any:
        """A value as the activity log keeps it (`companies.services.apply_changes`)."""
        return masked_adapter_config(value) if field == "adapter_config" else value

    # An agent is "authenticated" when its API key is presented (see agents.authentication).
    is_authenticated = True
    is_anonymous = False

    @property
    def can_mutate(self) -> bool:
        """Paused, terminated and not-yet-approved agents may read but not change anything."""
        return self.status not in {
            self.Status.PAUSED,
            self.Status.TERMINATED,
            self.Status.PENDING_APPROVAL,
        }

    def chain_of_command(self) -> list[Agent]:
        """Managers from the direct one up to the top (one query per level)."""
        chain: list[Agent] = []
        seen = {self.pk}
        manager = self.reports_to
        while manager is not None and manager.pk not in seen and len(chain) < MAX_CHAIN_DEPTH:
            chain.append(manager)
            seen.add(manager.pk)
            manager = manager.reports_to
        return chain

    def manages(self, other: Agent) -> bool:
        """Whether `other` reports to this agent, directly or through managers."""
        return any(manager.pk == self.pk for manager in other.chain_of_command())

    @transition(
        field=status,
        source=[Status.ACTIVE, Status.IDLE, Status.RUNNING, Status.ERROR],
        target=Status.PAUSED,
        custom={"label": "Pause"},
    )
    def pause(self, reason: str = PauseReason.MANUAL) -> None:
        """Stop the agent from changing anything; its keys keep read access."""
        self.pause_reason = reason

    @transition(
        field=status, source=Status.PAUSED, target=Status.ACTIVE, custom={"label": "Resume"}
    )
    def resume(self) -> None:
        """Let a paused agent work again."""
        self.pause_reason = ""

    @transition(
        field=status,
        source=[
            Status.ACTIVE,
            Status.PAUSED,
            Status.IDLE,
            Status.RUNNING,
            Status.ERROR,
            Status.PENDING_APPROVAL,
        ],
        target=Status.TERMINATED,
        custom={"label": "Terminate"},
    )
    def terminate(self) -> None:
        """End the agent for good; the service revokes its keys in the same transaction."""


class AgentApiKey(HashedToken):
    """An agent's API key (`pcp_` + 48 hex). Only its SHA-256 is stored; the token is shown once."""

    id = PrefixedIdField(prefix="key")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")

    class Meta:
        verbose_name = "agent API key"

    def __str__(self) -> str:
        return f"{self.token_prefix}… ({self.agent})"


def run_cost() -> dict[str, models.Expression]:
    """What a run cost: the sum of its cost events (DESIGN §10; a run's finish with `usage`
    records one), in USD, and its input and output tokens. In SQL, so a page of runs reads it in
    its own query (`HeartbeatRunQuerySet.with_cost`, `HeartbeatRun.cost`)."""

    def total(column: str, output_field: models.Field) -> models.Expression:
        return Coalesce(Sum(f"costs__{column}"), models.Value(0), output_field=output_field)

    return {
        "cost_usd": total("cost_cents", models.DecimalField()) * models.Value(Decimal("0.01")),
        "cost_input_tokens": total("input_tokens", models.BigIntegerField()),
        "cost_output_tokens": total("output_tokens", models.BigIntegerField()),
    }


@dataclass(frozen=True)
class RunCost:
    usd: Decimal
    input_tokens: int
    output_tokens: int


# Activity actions by which a run takes an issue's checkout lock (written by issues.services).
CHECKED_OUT = "issue.checked_out"
LOCK_ADOPTED = "issue.checkout_lock_adopted"


class HeartbeatRunQuerySet(CompanyScopedQuerySet):
    def for_issue(self, issue_id: str, *, company_id: str):
        """Runs of the issue's company woken for the issue or that held its lock, newest first.

        The company too: a wakeup of another company's agent may name this issue's id.
        """
        holders = ActivityEvent.objects.filter(
            issue_id=issue_id, action__in=(CHECKED_OUT, LOCK_ADOPTED), run_id__isnull=False
        ).values("run_id")
        return (
            self.filter(company_id=company_id)
            .filter(models.Q(issue_id=issue_id) | models.Q(pk__in=holders))
            .order_by("-created_at", "-id")
        )

    def live(self):
        """Queued or running with an unexpired lease: may hold a checkout lock."""
        return self.filter(
            status__in=HeartbeatRun.LIVE_STATUSES, lease_expires_at__gt=timezone.now()
        )

    def expired(self):
        """Queued or running whose lease ran out: dead, though nobody has said so yet."""
        return self.filter(
            status__in=HeartbeatRun.LIVE_STATUSES, lease_expires_at__lte=timezone.now()
        )

    def time_out_expired(self, ids) -> int:
        """Implements the lease's expiry, queued or running → timed_out (`exit_reason`
        `lease_expired`, the lease released then), for many runs at once, as one conditional
        UPDATE. It is not `HeartbeatRun.time_out`: that edge is a running command stopped past
        its `timeoutSec`, and leaves a queued run alone.

        Only runs still live-by-status with an expired lease change, so a run that finished or
        renewed its lease in the meantime is left alone. Answers how many changed.
        """
        now = timezone.now()
        return self.filter(
            pk__in=ids, status__in=HeartbeatRun.LIVE_STATUSES, lease_expires_at__lte=now
        ).update(
            status=HeartbeatRun.Status.TIMED_OUT,
            finished_at=now,
            exit_reason="lease_expired",
            lease_released_at=now,
            lease_release_reason="lease_expired",
        )

    def renew_lease(self, run_id: str, agent_id: str, *, min_interval_seconds: int = 5) -> int:
        """Push a live run's lease to now + PAPERCLIP_LEASE_SECONDS, counting the renewal.

        Skips the write when the lease was renewed in the last few seconds, so a chatty agent
        costs at most one write per run per interval.
        """
        now = timezone.now()
        lease = timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)
        return self.filter(
            pk=run_id,
            agent_id=agent_id,
            status__in=HeartbeatRun.LIVE_STATUSES,
            lease_expires_at__gt=now,
            lease_expires_at__lt=now + lease - timedelta(seconds=min_interval_seconds),
        ).update(
            lease_expires_at=now + lease,
            lease_renewals=models.F("lease_renewals") + 1,
            lease_renewed_at=now,
        )

    def with_cost(self):
        """Each run with what it cost (`run_cost`), read by `HeartbeatRun.cost` without a query."""
        return self.annotate(**run_cost())

    def claims_of(self, issue_id: str):
        """The runs that claimed the task on `/v1`, one per attempt, newest first (wakes that
        never claimed it have no fencing token)."""
        return self.filter(issue_id=issue_id, fencing_token__isnull=False).order_by(
            "-created_at", "-id"
        )

    def prunable(self, before: datetime):
        """Runs retention may trim (`issues.retention`, `manage.py prune`): finished (any status
        but queued or running) before `before`, with something left to trim: a stored log, its
        tail, or one of the bulky fields `PRUNED_RUN_FIELDS` resets. A trimmed run no longer
        matches, so pruning twice trims nothing the second time. The row itself stays: costs
        and the activity log point at it."""
        finished_before = models.Q(finished_at__lt=before) | models.Q(
            finished_at__isnull=True, created_at__lt=before
        )
        bulky = (
            ~models.Q(log_file="")
            | ~models.Q(log_tail="")
            | ~models.Q(error="")
            | ~models.Q(context={})
            | ~models.Q(result={})
            | models.Q(checkpoint__isnull=False)
        )
        return self.exclude(status__in=HeartbeatRun.LIVE_STATUSES).filter(finished_before, bulky)


# What retention resets on a finished run (`HeartbeatRunQuerySet.prunable`): its output (the
# stored file's name, the tail), what it was woken with, its error text, the agent's result and
# its last /v1 checkpoint, each as long as its owner allows. Status, timestamps, exit reason and
# code, exit details, usage and lease history stay: they are small and say how the run went.
PRUNED_RUN_FIELDS: dict[str, Any] = {
    "log_file": "",
    "log_tail": "",
    "context": {},
    "error": "",
    "result": {},
    "checkpoint": None,
}


class HeartbeatRun(ConcurrentTransitionMixin, models.Model):
    """One working session of one agent. Live while queued or running with an unexpired lease."""

    activity_type = "heartbeat_run"  # its entity type in the activity log

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMED_OUT = "timed_out"

    LIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    FINISH_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    class Source(models.TextChoices):
        TIMER = "timer"
        ASSIGNMENT = "assignment"
        ON_DEMAND = "on_demand"
        AUTOMATION = "automation"

    id = PrefixedIdField(prefix="run")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="runs")
    status = FSMField(max_length=16, choices=Status.choices, default=Status.QUEUED, protected=True)
    invocation_source = models.CharField(
        max_length=16, choices=Source.choices, default=Source.ON_DEMAND
    )
    wake_reason = models.CharField(max_length=64, blank=True, default="")
    # The issue the run was woken for (a plain column: agents do not depend on issues).
    issue_id = models.CharField(max_length=32, null=True, blank=True)
    # taskId, commentId, approvalId, approvalStatus, linkedIssueIds, ... as delivered.
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    exit_reason = models.CharField(max_length=64, blank=True, default="")
    usage = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    result = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # A claim of a task on /v1 (DESIGN §8): the task's claim counter at the claim, the newest
    # checkpoint, and the lease the claim took (one per run: a retry is a new run).
    fencing_token = models.PositiveIntegerField(null=True, blank=True)
    checkpoint = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    exit_details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    lease_acquired_at = models.DateTimeField(null=True, blank=True)
    lease_renewals = models.PositiveIntegerField(default=0)
    lease_renewed_at = models.DateTimeField(null=True, blank=True)
    lease_released_at = models.DateTimeField(null=True, blank=True)
    lease_release_reason = models.CharField(max_length=32, blank=True, default="")
    # A process-adapter run (agents.process): how its command exited, the end of its output, and
    # the whole output as a file in storage (`GET /api/heartbeat-runs/{id}/log`).
    exit_code = models.IntegerField(null=True, blank=True)
    log_tail = models.TextField(blank=True, default="")
    log_file = models.FileField(upload_to="run-logs/", blank=True, default="", max_length=200)

    objects = HeartbeatRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # GET /api/companies/{id}/heartbeat-runs?agentId=&status=
            models.Index(fields=["company", "agent", "-created_at"], name="run_company_agent"),
            # Wake coalescing: the agent's queued run for an issue
            models.Index(fields=["agent", "status", "issue_id"], name="run_agent_status_issue"),
            # release_stale_locks: live-by-status runs whose lease expired
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status__in=["queued", "running"]),
                name="run_live_lease",
            ),
            # GET /api/issues/{id}/runs
            models.Index(fields=["issue_id", "-created_at"], name="run_issue_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.agent}, {self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status not in self.LIVE_STATUSES

    @property
    def cancel_requested(self) -> bool:
        """Stopped from outside (the board, a budget, its issue cancelled or reassigned): what its
        agent reads as `cancelRequested` on its next heartbeat."""
        return self.cancel_requested_at is not None

    @property
    def is_live(self) -> bool:
        return (
            self.status in self.LIVE_STATUSES
            and self.lease_expires_at is not None
            and self.lease_expires_at > timezone.now()
        )

    @property
    def cost(self) -> RunCost:
        """What the run cost (`run_cost`): from its `with_cost()` columns when it was read
        through them, else from its row, in one query."""
        if not hasattr(self, "cost_usd"):
            columns = HeartbeatRun.objects.with_cost().values(*run_cost()).get(pk=self.pk)
            self.__dict__.update(columns)
        return RunCost(
            usd=self.cost_usd,
            input_tokens=int(self.cost_input_tokens),
            output_tokens=int(self.cost_output_tokens),
        )

    def costs_nothing_yet(self) -> None:
        """A run just started has no cost events: `cost` needs no query to say so."""
        self.__dict__.update(cost_usd=Decimal(0), cost_input_tokens=0, cost_output_tokens=0)

    def _renew(self) -> None:
        self.lease_expires_at = timezone.now() + timedelta(seconds=settings.PAPERCLIP_LEASE_SECONDS)

    def renew_lease(self) -> None:
        """Push the lease to now + PAPERCLIP_LEASE_SECONDS and count the renewal (its lease
        history on `/v1`). The caller has checked the run is live."""
        self._renew()
        self.lease_renewals += 1
        self.lease_renewed_at = timezone.now()

    def release_lease(self, reason: str) -> None:
        """The run gives its lease up (it finished, handed off, was stopped): when and why."""
        self.lease_released_at = timezone.now()
        self.lease_release_reason = reason

    @transition(field=status, source=Status.QUEUED, target=Status.RUNNING)
    def start(self) -> None:
        """The agent's process picked the run up: sets started_at and renews the lease."""
        self.started_at = timezone.now()
        self._renew()

    @transition(
        field=status,
        source=[Status.QUEUED, Status.RUNNING],
        target=RETURN_VALUE(*FINISH_STATUSES),
    )
    def finish(self, outcome: str) -> str:
        """The agent reports how the run ended. Locks it holds stay, now stale (DESIGN §3)."""
        self.finished_at = timezone.now()
        self.exit_reason = self.exit_reason or outcome
        return outcome

    @transition(field=status, source=Status.RUNNING, target=Status.TIMED_OUT)
    def time_out(self, reason: str = "timeout") -> None:
        """The run overran its time (a process past `timeoutSec`) and was stopped."""
        self.finished_at = timezone.now()
        self.exit_reason = reason

    @transition(field=status, source=[Status.QUEUED, Status.RUNNING], target=Status.CANCELLED)
    def cancel(self, reason: str = "cancelled_by_board") -> None:
        """The run is stopped from outside (the board, or its issue was reassigned or
        cancelled); the agent learns it from its next heartbeat. `reason` is the exit reason."""
        now = timezone.now()
        self.cancel_requested_at = now
        self.finished_at = now
        self.exit_reason = reason


class WakeupRequest(models.Model):
    """Every wake of an agent, kept even when it merged into an already queued run."""

    id = PrefixedIdField(prefix="wak")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="wakeups")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="wakeups")
    run = models.ForeignKey(HeartbeatRun, on_delete=models.CASCADE, related_name="wakeups")
    source = models.CharField(max_length=16, choices=HeartbeatRun.Source.choices)
    reason = models.CharField(max_length=64, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    requested_by_type = models.CharField(max_length=16)
    requested_by_id = models.CharField(max_length=32)
    coalesced = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CompanyScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="wakeup_idempotency_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} → {self.agent} ({self.reason or self.source})"


class WakeDeliveryQuerySet(models.QuerySet):
    def prunable(self, before: datetime):
        """Attempts retention may delete (`manage.py prune`): made before `before`, of a run
        that is no longer queued or running. Each row is written once its POST has ended, so
        none is pending; a live run's attempts stay while it may still be retried."""
        return self.filter(created_at__lt=before).exclude(
            run__status__in=HeartbeatRun.LIVE_STATUSES
        )


class WakeDelivery(models.Model):
    """One attempt to POST a wake to an agent's HTTP adapter."""

    id = PrefixedIdField(prefix="dlv")
    run = models.ForeignKey(HeartbeatRun, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    succeeded = models.BooleanField(default=False)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WakeDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["run", "attempt"]
        verbose_name_plural = "wake deliveries"

    def __str__(self) -> str:
        return f"{self.run_id} attempt {self.attempt}"


class WebhookEndpointQuerySet(CompanyScopedQuerySet):
    def visible_to(self, actor: Actor):
        """Endpoints are the board's (their URLs say where the company's events go, DESIGN §9):
        an agent is refused outright (403), for reads as for writes."""
        if not (actor.is_board or actor.is_instance_admin or actor.type == "system"):
            raise NotAllowed("Board access required")
        return super().visible_to(actor)


class WebhookEndpoint(OneClockTimestamps, models.Model):
    """Where the board wants a company's domain events POSTed (DESIGN §9), signed with `secret`
    the Standard Webhooks way. `events` holds names of `agents.events.EVENT_TYPES`, or `["*"]`.
    An endpoint the worker gave up on is inactive with a `disabled_reason` until the board
    re-enables it."""

    id = PrefixedIdField(prefix="whk")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=500)
    events = models.JSONField(default=list)
    description = models.TextField(blank=True, default="")
    active = models.BooleanField(default=True)
    # `whsec_` + base64; answered at creation and rotation only.
    secret = models.CharField(max_length=100, editable=False)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = WebhookEndpointQuerySet.as_manager()

    activity_type = "webhook"

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookDeliveryQuerySet(CompanyScopedQuerySet):
    def prunable(self, before: datetime):
        """Attempts retention may delete (`manage.py prune`): settled (succeeded or failed)
        and queued before `before`. A pending attempt stays whatever its age: the worker or
        `dispatch_events` may still send it. A retry is a new row, so deleting a settled one
        never stops a retry."""
        return self.filter(created_at__lt=before).exclude(status=WebhookDelivery.Status.PENDING)


class WebhookDelivery(models.Model):
    """One attempt to POST an event to a webhook endpoint (the delivery log of DESIGN §9).

    Its own table rather than a generalised `WakeDelivery`: a wake attempt belongs to a run, a
    webhook attempt to an endpoint and an event, which every retry repeats (`event_id` is the
    `webhook-id` header, the same on each attempt, so receivers can drop duplicates). The row is
    written `pending` when the attempt is queued and settled by the worker; a retry is a new row.
    What is sent on the wire, and how, is shared with wakes (`agents.delivery.send_signed`).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = PrefixedIdField(prefix="whd")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.CharField(max_length=32)
    event_type = models.CharField(max_length=64)
    # The event as sent (`/v1` ids); kept so a retry or a redelivery sends the same bytes' worth.
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")  # the first 4 KiB
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # GET .../webhooks/{id}/deliveries, newest first
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} attempt {self.attempt}"
