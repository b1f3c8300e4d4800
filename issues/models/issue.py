"""The issue, the unit of work, and its lifecycle (DESIGN §2): one state machine."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.db import connections, models
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, JSONObject
from django.db.models.query import ModelIterable, ValuesIterable
from django.utils import timezone
from django.utils.functional import cached_property
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from agents.models import Agent, HeartbeatRun, Team
from companies.models import Company
from issues.models.records import Goal, Label, Project
from paperclip.ids import PrefixedIdField, parse_id
from paperclip.returning import JSONGroupArray, ReturningRead, returning, update_returning
from paperclip.tenancy import CompanyScopedQuerySet
from paperclip.timestamps import OneClockTimestamps


class Priority(models.IntegerChoices):
    """Stored as a rank so `ORDER BY priority` is critical-first and index-friendly."""

    CRITICAL = 0, "critical"
    HIGH = 1, "high"
    MEDIUM = 2, "medium"
    LOW = 3, "low"


class Status(models.TextChoices):
    BACKLOG = "backlog"
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


TERMINAL_STATUSES = frozenset({Status.DONE, Status.CANCELLED, Status.FAILED})
OPEN_STATUSES = tuple(s for s in Status.values if s not in TERMINAL_STATUSES)
# What an issue may be created in (DESIGN §2).
INITIAL_STATUSES = (Status.BACKLOG, Status.TODO, Status.BLOCKED)


class IssueQuerySet(CompanyScopedQuerySet):
    def by_ref(self, ref: str):
        """An issue by id (`iss_...`) or identifier (`ACM-12`, any case)."""
        pk = parse_id(ref, "iss")
        if pk:
            return self.filter(pk=pk)
        return self.filter(identifier=ref.upper())

    def open(self):
        return self.filter(status__in=OPEN_STATUSES)

    def visible_on_board(self):
        return self.filter(hidden_at__isnull=True)

    def try_checkout(
        self,
        *,
        issue_id: str,
        agent_id: str,
        run_id: str | None,
        expected: list[str],
        count_claim: bool = False,
    ) -> Issue | None:
        """Implements `Issue.check_out` as ONE conditional UPDATE (compare-and-set).

        It changes the row only when the issue is in an expected status, unlocked, and
        unassigned or assigned to this agent, or when it is already this agent's unlocked
        in-progress issue (adoption). Of N racing runs exactly one gets the issue back (with
        its relations, spend and project state, in the same statement); the others get None.
        `count_claim` (a `/v1` claim) also bumps the claim counter: the run's fencing token.

        Written in SQL rather than built with the ORM: it is the hottest statement, and
        building and compiling it cost ten times its run. Single-table conditions only: a join
        would need `WHERE id IN (SELECT ...)`, which PostgreSQL does not re-check against the
        winner's row.
        """
        connection = connections[self.db]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        counter = ", claim_count = claim_count + 1" if count_claim else ""
        statuses = ", ".join(["%s"] * len(expected))
        sql = f"""
            UPDATE issues_issue SET
                status = %s, status_reason = '', assignee_agent_id = %s, checkout_run_id = %s,
                execution_locked_at = %s,
                started_at = CASE WHEN status = %s THEN started_at ELSE %s END,
                updated_at = %s, version = version + 1{counter}
            WHERE id = %s AND checkout_run_id IS NULL AND (
                (status IN ({statuses}) AND assignee_user_id IS NULL
                 AND (assignee_agent_id IS NULL OR assignee_agent_id = %s))
                OR (status = %s AND assignee_agent_id = %s)
            )"""  # only placeholders are formatted in, never a value
        params = [
            Status.IN_PROGRESS, agent_id, run_id, now, Status.IN_PROGRESS, now, now, issue_id,
            *expected, agent_id, Status.IN_PROGRESS, agent_id,
        ]  # fmt: skip
        return _adopted(returning(self.db, sql, params, read=CHECKED_OUT_READ))

    def adopt_lock(
        self, *, issue_id: str, agent_id: str, stale_run_id: str, run_id: str
    ) -> Issue | None:
        """Implements `Issue.check_out` for a stale lock: the same agent's new run takes over.

        Conditional on the lock still naming the stale run, so two new runs of one agent
        cannot both adopt it. Answers the issue (as `try_checkout` does) to the one that did.
        """
        now = timezone.now()
        changed = update_returning(
            self.filter(
                pk=issue_id,
                status=Status.IN_PROGRESS,
                assignee_agent_id=agent_id,
                checkout_run_id=stale_run_id,
            ),
            read=CHECKED_OUT_READ,
            checkout_run_id=run_id,
            execution_locked_at=now,
            updated_at=now,
            version=F("version") + 1,
        )
        return _adopted(changed)

    def stale_locks(self):
        """In-progress issues locked by a run that is no longer live (finished or expired)."""
        return self.filter(status=Status.IN_PROGRESS, checkout_run__isnull=False).exclude(
            checkout_run__status__in=HeartbeatRun.LIVE_STATUSES,
            checkout_run__lease_expires_at__gt=timezone.now(),
        )

    def with_spent(self):
        """Each task with what it has spent (`spent_usd`, DESIGN §8, §10): the sum of its cost
        events in USD, in SQL, so a list reads it in its own query and `Issue.spent_usd` needs
        none."""
        from issues.models.costs import CostEvent  # defined beside, after this module

        costs = (
            CostEvent.objects.filter(issue=OuterRef("pk"))
            .order_by()
            .values("issue_id")
            .annotate(total=Sum("cost_cents"))
            .values("total")
        )
        spent = Coalesce(Subquery(costs), Value(Decimal(0)), output_field=models.DecimalField())
        return self.annotate(spent_usd=spent * Value(Decimal("0.01")))

    def with_relations(self):
        """Issues with their labels and dependencies in the row itself (a JSON array each, from
        a correlated subquery), as the serializers read them: a page of issues is then one
        statement, whatever its size, and no instance needs a query of its own."""
        labels = Issue.labels.through.objects.filter(issue_id=OuterRef("pk"))
        dependencies = Issue.dependencies.through.objects.filter(from_issue_id=OuterRef("pk"))
        clone = self.annotate(
            label_rows=_json_rows(labels, "issue_id", id="label_id", name="label__name",
                                  color="label__color"),
            dependency_rows=_json_rows(dependencies, "from_issue_id", id="to_issue_id",
                                       identifier="to_issue__identifier",
                                       status="to_issue__status"),
        )  # fmt: skip
        clone._iterable_class = _WithRelations
        return clone

    def showing(self, instance: models.Model):
        """The issues whose answer names `instance` (as parent, dependency, project, goal, team
        or label): what deleting it changes without a write of theirs."""
        showing = Q()
        for field in Issue._meta.get_fields():
            forward = (field.many_to_one or field.many_to_many) and not field.auto_created
            if forward and field.related_model is type(instance):
                showing |= Q(**{field.name: instance})
        return self.filter(showing).exclude(pk=instance.pk) if showing else self.none()

    def touch(self) -> int:
        """A new version of these issues, whose representation a change elsewhere altered (a
        label renamed or deleted, a parent or a dependency deleted): their ETags and the
        versions of the lists holding them move (`paperclip.conditional.version_etag`)."""
        return self.update(version=F("version") + 1, updated_at=timezone.now())

    def rows(self, *, with_holder: bool = False):
        """These issues as `IssueRow`s (plain values and this queryset's annotations, their
        labels and dependencies read with them; `with_holder`: the run holding each, as
        `checkout_run`): what a list renders, without a model instance per row."""
        names = [field.attname for field in Issue._meta.concrete_fields]
        annotated = [name for name in self.query.annotations if name not in names]
        holder = [f"checkout_run__{column}" for column in HOLDER_COLUMNS] if with_holder else []
        clone = self.with_relations().values(
            *names, *annotated, "label_rows", "dependency_rows", *holder
        )
        clone._iterable_class = _IssueRows
        return clone

    def with_project_state(self):
        """Issues with whether their project is paused (`Issue.project_is_paused`), read in a
        subquery rather than a join (a row locked for update is re-read alone)."""
        paused = Project.objects.filter(pk=OuterRef("project_id"), paused_at__isnull=False)
        return self.annotate(project_is_paused=Exists(paused))

    def with_list_relations(self):
        """Everything the issue serializer reads, in a fixed number of queries.

        No joins: the serializer reads only `*_id` columns; labels and dependencies come in one
        query each for the whole page.
        """
        return self.prefetch_related(*LIST_PREFETCHES)


# What a checkout answers (and its event's task object reads): the issue with its relations,
# spend and project state, read by the UPDATE itself.
CHECKED_OUT_READ = ReturningRead(
    lambda: Issue.objects.with_relations().with_spent().with_project_state()
)


def _json_rows(rows, group_by: str, **fields) -> Subquery:
    """The `rows` of one issue as a JSON array of objects with `fields` (None when none)."""
    return Subquery(
        rows.order_by()
        .values(group_by)
        .annotate(rows=JSONGroupArray(JSONObject(**fields)))
        .values("rows")
    )


class _WithRelations(ModelIterable):
    """Issues read `with_relations`: their JSON neighbours become their prefetched labels and
    dependencies, as `LIST_PREFETCHES` would have fetched them."""

    def __iter__(self):
        for issue in super().__iter__():
            issue.adopt_relations()
            yield issue


class IssueRow(SimpleNamespace):
    """An issue read as values, to be rendered and nothing else (`IssueQuerySet.rows`): its
    columns by attribute name and, like an instance, `pk`, `label_list()` and
    `dependency_list()`, so the issue serializers render it as they render an instance."""

    @property
    def pk(self) -> str:
        return self.id

    def label_list(self) -> list[SimpleNamespace]:
        return sorted(self.labels_read, key=lambda label: label.name)

    def dependency_list(self) -> list[SimpleNamespace]:
        return sorted(self.dependencies_read, key=lambda issue: issue.pk)


# What a row read with the run holding its issue carries of that run (`checkout_run__<column>`):
# enough for the run to say whether it is live.
HOLDER_COLUMNS = ("id", "agent_id", "status", "lease_expires_at")


def pop_holder(values: dict) -> HeartbeatRun | None:
    """The run holding a row's issue, from its `checkout_run__<column>` values (removed)."""
    run = {column: values.pop(f"checkout_run__{column}") for column in HOLDER_COLUMNS}
    return HeartbeatRun(**run) if run["id"] else None


class _IssueRows(ValuesIterable):
    def __iter__(self):
        for values in super().__iter__():
            labels = values.pop("label_rows") or ()
            dependencies = values.pop("dependency_rows") or ()
            if "checkout_run__id" in values:
                values["checkout_run"] = pop_holder(values)
            yield IssueRow(
                **values,
                labels_read=[SimpleNamespace(pk=row["id"], **row) for row in labels],
                dependencies_read=[SimpleNamespace(pk=row["id"], **row) for row in dependencies],
            )


def _adopted(issues: list[Issue]) -> Issue | None:
    for issue in issues:
        issue.adopt_relations()
    return issues[0] if issues else None


def _has_assignee(issue: Issue) -> bool:
    return issue.assignee_agent_id is not None or issue.assignee_user_id is not None


class StatusReason(models.TextChoices):
    """Why an issue is where it is, when its status alone does not say (DESIGN §8)."""

    WAITING_ON_DEPENDENCIES = "waiting_on_dependencies"
    AWAITING_APPROVAL = "awaiting_approval"
    NO_AVAILABLE_AGENT = "no_available_agent"
    REASSIGNED = "reassigned"
    CHANGES_REQUESTED = "changes_requested"
    LEASE_EXPIRED = "lease_expired"
    BUDGET_EXHAUSTED = "budget_exhausted"


class Issue(OneClockTimestamps, ConcurrentTransitionMixin, models.Model):
    """A unit of work. Its status changes only through the `@transition` methods below."""

    id = PrefixedIdField(prefix="iss")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="issues")
    number = models.PositiveIntegerField(editable=False)
    identifier = models.CharField(max_length=32, unique=True, editable=False)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    status = FSMField(max_length=16, choices=Status.choices, default=Status.BACKLOG, protected=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    # Set by the verbs that explain a status (reassign, request changes); any later status
    # change clears it.
    status_reason = models.CharField(
        max_length=32, choices=StatusReason.choices, blank=True, default=""
    )
    assignee_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_issues"
    )
    assignee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_issues",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="issues"
    )
    goal = models.ForeignKey(
        Goal, null=True, blank=True, on_delete=models.SET_NULL, related_name="issues"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="issues"
    )
    labels = models.ManyToManyField(Label, blank=True, related_name="issues")
    # The issues this one waits on.
    dependencies = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    billing_code = models.CharField(max_length=100, blank=True, default="")
    budget_usd = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_by_agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_issues"
    )
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_issues",
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    # The checkout lock: which run holds the issue while it is in progress.
    checkout_run = models.ForeignKey(
        HeartbeatRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="locked_issues"
    )
    execution_locked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Bumped on every write; the ETag, checked against If-Match.
    version = models.PositiveIntegerField(default=1, editable=False)
    # Bumped by every claim of the task on /v1: the claiming run's fencing token (DESIGN §8).
    claim_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Moved by the services (`touch`, the conditional UPDATEs) on a change a reader should see,
    # not by every save(); on creation it is the same reading as created_at.
    updated_at = models.DateTimeField(default=timezone.now)
    stamp_updated_at_on_save = False

    objects = IssueQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "number"], name="issue_number_per_company"),
            models.CheckConstraint(
                condition=Q(assignee_agent__isnull=True) | Q(assignee_user__isnull=True),
                name="issue_at_most_one_assignee",
                violation_error_message="An issue has at most one assignee: an agent or a user.",
            ),
        ]
        indexes = [
            # Board columns: ?status=
            models.Index(fields=["company", "status"], name="issue_company_status"),
            # An agent's inbox: ?assigneeAgentId=&status=todo,in_progress,blocked
            models.Index(
                fields=["company", "assignee_agent", "status"], name="issue_company_assignee"
            ),
            # Sub-issues: ?parentId=
            models.Index(fields=["company", "parent"], name="issue_company_parent"),
            # The default list order over open issues: priority, then most recently updated.
            models.Index(
                fields=["company", "priority", "-updated_at", "-id"],
                condition=Q(status__in=OPEN_STATUSES),
                name="issue_open_by_priority",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} {self.title}"

    # The reason as read from the database: the services set `status_reason` without logging
    # it, and an event's `previous` names the old one (`issues.events`).
    status_reason_as_loaded = ""

    @classmethod
    def from_db(cls, db, field_names, values):
        issue = super().from_db(db, field_names, values)
        issue.status_reason_as_loaded = issue.__dict__.get("status_reason", "")
        return issue

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @cached_property
    def spent_usd(self) -> Decimal:
        """What the task has spent (`IssueQuerySet.with_spent`): its annotation when the task
        was read through it, else one query."""
        return Issue.objects.with_spent().values_list("spent_usd", flat=True).get(pk=self.pk)

    @cached_property
    def project_is_paused(self) -> bool:
        """Whether its project is paused (`IssueQuerySet.with_relations` reads it with the row)."""
        return self.project_id is not None and self.project.is_paused

    def adopt_relations(self) -> None:
        """Make the labels and dependencies read `with_relations` this instance's prefetched
        ones (`issue.labels.all()` then needs no query)."""
        self.know_relations(
            labels=[
                Label(company_id=self.company_id, **row)
                for row in self.__dict__.pop("label_rows") or ()
            ],
            dependencies=[
                Issue.from_db(
                    None, ["id", "identifier", "status"], (r["id"], r["identifier"], r["status"])
                )
                for r in self.__dict__.pop("dependency_rows") or ()
            ],
        )

    def know_relations(self, *, labels: list[Label], dependencies: list[Issue]) -> None:
        """Record what its labels and dependencies are, as a prefetch would have: for rows read
        with them, and for an issue just created with them."""
        cache = self.__dict__.setdefault("_prefetched_objects_cache", {})
        for name, model, rows in (("labels", Label, labels), ("dependencies", Issue, dependencies)):
            queryset = models.QuerySet(model)
            queryset._result_cache, queryset._prefetch_done = list(rows), True
            cache[name] = queryset

    def label_list(self) -> list[Label]:
        """Its labels by name: as read with it (`with_relations`, a prefetch) without building
        a related manager per call, else one query."""
        return sorted(self._related("labels"), key=lambda label: label.name)

    def dependency_list(self) -> list[Issue]:
        """The issues it waits on, by id (as `label_list`)."""
        return sorted(self._related("dependencies"), key=lambda issue: issue.pk)

    def _related(self, name: str) -> list:
        prefetched = self.__dict__.get("_prefetched_objects_cache", {}).get(name)
        if prefetched is not None and prefetched._result_cache is not None:
            return prefetched._result_cache
        return list(getattr(self, name).all())

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def _leave_in_progress(self) -> None:
        if self.status == Status.IN_PROGRESS:
            self.checkout_run = None
            self.execution_locked_at = None

    # --- The lifecycle (DESIGN §2). `custom["patch"]` marks edges a PATCH may request. ---

    @transition(
        field=status,
        source=[Status.TODO, Status.BLOCKED],
        target=Status.BACKLOG,
        custom={"patch": True, "label": "Move to backlog"},
    )
    def to_backlog(self) -> None:
        """Park the issue."""

    @transition(
        field=status,
        source=[Status.BACKLOG, Status.IN_PROGRESS, Status.IN_REVIEW, Status.BLOCKED],
        target=Status.TODO,
        custom={"patch": True, "label": "Move to todo"},
    )
    def to_todo(self) -> None:
        """Ready for work. Leaving in_progress clears the checkout lock."""
        self._leave_in_progress()

    @transition(
        field=status,
        source=[Status.TODO],
        target=Status.IN_PROGRESS,
        conditions=[_has_assignee],
        custom={"patch": True, "label": "Start"},
    )
    def start(self) -> None:
        """A board user starts the work by hand: needs an assignee; sets started_at.

        Agents enter in_progress only through checkout, which also comes from backlog, blocked
        and in_review.
        """
        self.started_at = timezone.now()

    @transition(
        field=status,
        source=[Status.BACKLOG, Status.TODO, Status.IN_REVIEW, Status.BLOCKED],
        target=Status.IN_PROGRESS,
        conditions=[_has_assignee],
        custom={"admin": False, "label": "Check out"},
    )
    def check_out(self) -> None:
        """An agent's run claims the issue (DESIGN §3). Never called on an instance: the race
        is decided by `IssueQuerySet.try_checkout`, one conditional UPDATE."""

    @transition(
        field=status,
        source=[Status.IN_PROGRESS],
        target=Status.IN_REVIEW,
        custom={"patch": True, "label": "Submit for review"},
    )
    def submit_for_review(self) -> None:
        """Work is done and waits for review; clears the checkout lock."""
        self._leave_in_progress()

    @transition(
        field=status,
        source=[Status.BACKLOG, Status.TODO, Status.IN_PROGRESS, Status.IN_REVIEW],
        target=Status.BLOCKED,
        custom={"patch": True, "label": "Block"},
    )
    def block(self) -> None:
        """Cannot progress; clears the checkout lock when leaving in_progress."""
        self._leave_in_progress()

    @transition(
        field=status,
        source=[Status.IN_PROGRESS, Status.IN_REVIEW],
        target=Status.DONE,
        custom={"patch": True, "label": "Complete"},
    )
    def complete(self) -> None:
        """Finished: sets completed_at, clears the lock. Terminal and frozen."""
        self._leave_in_progress()
        self.completed_at = timezone.now()

    @transition(
        field=status,
        source=[Status.BACKLOG, Status.TODO, Status.IN_PROGRESS, Status.IN_REVIEW, Status.BLOCKED],
        target=Status.CANCELLED,
        custom={"patch": True, "label": "Cancel"},
    )
    def cancel(self) -> None:
        """Stopped on purpose: sets cancelled_at, clears the lock. Terminal and frozen."""
        self._leave_in_progress()
        self.cancelled_at = timezone.now()

    @transition(
        field=status,
        source=[Status.IN_PROGRESS],
        target=Status.FAILED,
        custom={"patch": True, "label": "Fail"},
    )
    def fail(self) -> None:
        """Given up: sets failed_at, clears the lock. Terminal and frozen."""
        self._leave_in_progress()
        self.failed_at = timezone.now()

    @transition(
        field=status,
        source=list(TERMINAL_STATUSES),
        target=RETURN_VALUE(Status.TODO, Status.BACKLOG),
        custom={"label": "Reopen"},
    )
    def reopen(self) -> str:
        """The board's way out of a terminal state: todo when assigned, else backlog.

        Clears the finishing timestamps so the issue reads as open again.
        """
        self.completed_at = self.cancelled_at = self.failed_at = None
        return Status.TODO if _has_assignee(self) else Status.BACKLOG


# Labels and dependencies for a page of issues (see IssueQuerySet.with_list_relations).
LIST_PREFETCHES = (
    models.Prefetch("labels", queryset=Label.objects.order_by("name")),
    # `status` too: the FSM mixin reads it on every instance (deferred = a query each).
    models.Prefetch(
        "dependencies", queryset=Issue.objects.only("id", "identifier", "status").order_by("id")
    ),
)

# PATCH {"status": X} → the transition that reaches X.
TRANSITION_TO = {
    t.target: t.name
    for t in Issue._meta.get_field("status").get_all_transitions(Issue)
    if t.custom.get("patch")
}


def patchable_targets(current: str) -> list[str]:
    """The statuses a PATCH may move an issue in `current` to (`details.allowed`)."""
    return sorted(
        {
            t.target
            for t in Issue._meta.get_field("status").get_all_transitions(Issue)
            if t.custom.get("patch") and t.source == current
        },
        key=Status.values.index,
    )
