"""Writes for agents and their keys. Each runs in one transaction and logs one activity row."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.authentication import forget_keys
from agents.delivery import (
    check_delivery_url,
    new_webhook_secret,
    queue_attempt,
    queue_webhook_delivery,
)
from agents.events import PING, clean_event_names, event_envelope
from agents.models import (
    SECRET_MASK,
    Agent,
    AgentApiKey,
    HeartbeatRun,
    PauseReason,
    Team,
    WebhookDelivery,
    WebhookEndpoint,
)
from agents.wakeups import ensure_wakeable, wake
from companies.models import Company, hash_token, new_secret
from companies.services import log_change, save_changes
from paperclip.access import ensure_board, ensure_can_write, ensure_self_or_board
from paperclip.actors import SYSTEM, Actor
from paperclip.availability import agent_available
from paperclip.errors import Conflict, NotAllowed, ValidationFailed, validation_error
from paperclip.targets import TargetRefused


def validate_reports_to(agent: Agent, manager: Agent | None) -> None:
    """A manager must be another agent of the same company, and no chain may loop."""
    if manager is None:
        return
    if manager.company_id != agent.company_id:
        raise validation_error("reportsTo", "Manager must belong to the same company.")
    if manager.pk == agent.pk:
        raise validation_error("reportsTo", "An agent cannot report to itself.")
    if any(boss.pk == agent.pk for boss in manager.chain_of_command()):
        raise validation_error("reportsTo", "This would make a reporting cycle.")


def validate_adapter_config(config: Any) -> None:
    """An adapter config is a JSON object; its wake `url`, when given, one we may POST to
    (`check_delivery_url`: http(s), an address the target rules allow). Whoever writes it: the API,
    the admin, a hire."""
    if not isinstance(config, dict):
        raise validation_error("adapterConfig", "Must be a JSON object.")
    problems = process_config_problems(config)
    if problems:
        raise ValidationFailed(details={"adapterConfig": problems})
    if config.get("url") is None:
        return
    try:
        check_delivery_url(config["url"])
    except TargetRefused as exc:
        raise ValidationFailed(details={"adapterConfig": {"url": [exc.reason]}}) from None


def unmasked_adapter_config(config: Any, stored: dict[str, Any]) -> Any:
    """A config sent back with masked `env` values keeps the stored ones (a GET then PATCH
    round trip never writes the mask); a masked key with nothing stored is dropped."""
    if not isinstance(config, dict) or not isinstance(config.get("env"), dict):
        return config
    kept = stored.get("env") if isinstance(stored.get("env"), dict) else {}
    env = {
        key: kept[key] if value == SECRET_MASK else value
        for key, value in config["env"].items()
        if value != SECRET_MASK or key in kept
    }
    return {**config, "env": env}


def process_config_problems(config: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a process adapter's settings (`agents.process`), by key."""

    def whole(value: Any, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    checks = {
        "command": (lambda v: isinstance(v, str) and v.strip() != "", "A non-empty string."),
        "args": (strings, "A list of strings."),
        "cwd": (lambda v: isinstance(v, str) and v != "", "A directory path."),
        "env": (
            lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in (*v, *v.values())),
            "An object of string values.",
        ),
        "timeoutSec": (lambda v: whole(v, 1), "A whole number of seconds, at least 1."),
        "graceSec": (lambda v: whole(v, 0), "A whole number of seconds."),
        "maxConcurrentRuns": (lambda v: whole(v, 1), "A whole number, at least 1."),
    }
    return {
        key: [message]
        for key, (valid, message) in checks.items()
        if key in config and not valid(config[key])
    }


def refuse_taken_name(company_id: str, name: str, *, agent_id: str | None = None) -> None:
    """Agent names are unique in a company, case-insensitively (mentions find agents by name)."""
    clash = Agent.objects.for_company(company_id).filter(name__iexact=name)
    if agent_id is not None:
        clash = clash.exclude(pk=agent_id)
    if clash.exists():
        raise validation_error("name", "An agent with this name already exists.")


@transaction.atomic
def agent_create(*, actor: Actor, company: Company, data: dict[str, Any]) -> Agent:
    ensure_board(actor, company.pk)
    agent = Agent(company=company, webhook_secret=new_webhook_secret(), **data)
    validate_adapter_config(agent.adapter_config)
    validate_reports_to(agent, agent.reports_to)
    refuse_taken_name(company.pk, agent.name)
    agent.save()
    log_change(actor, agent, "agent.created", {"name": agent.name, "role": agent.role})
    agent_available(agent)
    return agent


@transaction.atomic
def agent_update(*, actor: Actor, agent: Agent, changes: dict[str, Any]) -> Agent:
    ensure_board(actor, agent.company_id)
    changes = dict(changes)
    if "budget_monthly_cents" in changes:  # first: it locks the company before the agent
        from issues.services.costs import budget_set  # costs build on agents

        budget_set(actor=actor, row=agent, cents=changes.pop("budget_monthly_cents"))
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if "reports_to" in changes:
        validate_reports_to(agent, changes["reports_to"])
    if "adapter_config" in changes:
        stored = agent.adapter_config or {}
        changes["adapter_config"] = unmasked_adapter_config(changes["adapter_config"], stored)
        validate_adapter_config(changes["adapter_config"])
    if "name" in changes:
        refuse_taken_name(agent.company_id, changes["name"], agent_id=agent.pk)
    moved = "team" in changes and changes["team"] != agent.team
    save_changes(actor, agent, changes)
    if moved:
        agent_available(agent)
    return agent


def transition_agent(actor: Actor, agent: Agent, name: str, action: str, *args: Any) -> Agent:
    """Move the agent along its lifecycle (`Agent.pause(reason)`, ...), on its locked row."""
    ensure_board(actor, agent.company_id)
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    previous = agent.status
    getattr(agent, name)(*args)
    agent.save()
    # API keys speak for the agent as it now is: forgotten now, and again at commit (a request
    # of this process may have read the old status meanwhile).
    forget_keys()
    transaction.on_commit(forget_keys)
    details = {"status": {"from": previous, "to": agent.status}}
    if agent.pause_reason:
        details["pauseReason"] = agent.pause_reason
    log_change(actor, agent, action, details)
    return agent


@transaction.atomic
def agent_pause(*, actor: Actor, agent: Agent) -> Agent:
    """Pause an agent: its keys keep read access but may not change anything."""
    return transition_agent(actor, agent, "pause", "agent.paused")


@transaction.atomic
def agent_resume(*, actor: Actor, agent: Agent) -> Agent:
    agent = transition_agent(actor, agent, "resume", "agent.resumed")
    agent_available(agent)
    start_waiting_runs(agent.pk)  # a process agent's runs waited while it was paused
    return agent


@transaction.atomic
def agent_terminate(*, actor: Actor, agent: Agent) -> Agent:
    """Terminate an agent for good and revoke every key it has."""
    ensure_board(actor, agent.company_id)
    # Its live runs first, then the agent: the order a heartbeat or the worker takes them.
    live = list(
        HeartbeatRun.objects.select_for_update()
        .filter(agent=agent, status__in=HeartbeatRun.LIVE_STATUSES)
        .order_by("pk")
    )
    agent = transition_agent(actor, agent, "terminate", "agent.terminated")
    agent.api_keys.active().update(revoked_at=timezone.now())
    for run in live:
        stop_run(actor, run, "agent_terminated")  # a running command is stopped as well
    return agent


@transaction.atomic
def agent_key_create(
    *, actor: Actor, agent: Agent, name: str = "default"
) -> tuple[AgentApiKey, str]:
    """Create an API key; the plain token is returned once and never stored."""
    ensure_board(actor, agent.company_id)
    if agent.status == Agent.Status.TERMINATED:
        raise Conflict(
            "Agent is terminated; it gets no new keys",
            code="agent_terminated",
            details={"agentId": agent.pk},
        )
    token = new_secret("pcp_")
    key = AgentApiKey.objects.create(
        agent=agent, name=name, token_hash=hash_token(token), token_prefix=token[:12]
    )
    log_change(actor, agent, "agent.key_created", {"keyId": key.pk, "name": name})
    return key, token


# --- Runs (DESIGN §3) ---


@transaction.atomic
def agent_wakeup(
    *,
    actor: Actor,
    agent: Agent,
    source: str,
    reason: str = "",
    payload: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> HeartbeatRun:
    """Wake an agent by hand (the board, or an agent waking itself); answers its run."""
    ensure_self_or_board(actor, agent, "An agent may wake only itself")
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    ensure_wakeable(agent)
    payload = payload or {}
    issue_id = payload.get("taskId") or payload.get("issueId")
    run, created = wake(
        actor=actor,
        agent=agent,
        source=source,
        reason=reason or source,
        issue_id=issue_id if isinstance(issue_id, str) else None,
        context={k: v for k, v in payload.items() if k in WAKE_CONTEXT_KEYS},
        payload=payload,
        idempotency_key=idempotency_key,
    )
    # Wakes that accompany another change are recorded as WakeupRequests; a wake asked for
    # on its own is the request's mutation, so it gets the activity row.
    log_change(
        actor, run, "agent.woken", {"source": source, "reason": reason, "coalesced": not created}
    )
    return run


WAKE_CONTEXT_KEYS = ("commentId", "approvalId", "approvalStatus", "linkedIssueIds")


def _lock_run(run: HeartbeatRun) -> HeartbeatRun:
    return HeartbeatRun.objects.select_for_update().get(pk=run.pk)


def _ensure_runs_own(actor: Actor, run: HeartbeatRun) -> None:
    """A run is started, renewed and finished by its own agent (or the board).

    A request from the run itself is not refused for the run being finished: that is for the
    run verbs to answer (409 run_finished, or the idempotent repeat).
    """
    ensure_can_write(actor, run.company_id, check_run=actor.run_id != run.pk)
    if actor.is_agent and run.agent_id != actor.agent.pk:
        raise NotAllowed("A run belongs to its agent")


def _finished_conflict(run: HeartbeatRun) -> Conflict:
    return Conflict(
        f"Run is already {run.status}",
        code="run_finished",
        details={"runId": run.pk, "status": run.status},
    )


@transaction.atomic
def run_start(*, actor: Actor, run: HeartbeatRun) -> HeartbeatRun:
    """queued → running (idempotent for a running run); renews the lease."""
    _ensure_runs_own(actor, run)
    run = _lock_run(run)
    if run.status == HeartbeatRun.Status.RUNNING:
        return run
    if run.is_terminal:
        raise _finished_conflict(run)
    run.start()
    run.save()
    Agent.objects.filter(pk=run.agent_id).update(last_heartbeat_at=timezone.now())
    log_change(actor, run, "run.started", {"status": {"from": "queued", "to": run.status}})
    return run


@transaction.atomic
def run_heartbeat(*, actor: Actor, run: HeartbeatRun) -> HeartbeatRun:
    """Renew (and count) the lease of a live run. A run the board cancelled answers
    `cancelRequested`, even to an agent that may change nothing now (its budget stopped it)."""
    if actor.is_agent and run.agent_id == actor.agent.pk:
        if run.cancel_requested:
            return run
        if actor.agent.pause_reason == PauseReason.BUDGET and actor.agent.status == "paused":
            # Its budget stopped the agent while this run's own request held it: stop it now.
            run = _lock_run(run)
            if not run.is_terminal:
                stop_run(SYSTEM, run, BUDGET_EXHAUSTED)
            return run
    _ensure_runs_own(actor, run)
    run = _lock_run(run)
    if run.cancel_requested:
        return run
    if run.is_terminal:
        raise _finished_conflict(run)
    if not run.is_live:
        raise Conflict(
            "Run lease expired",
            code="run_lease_expired",
            details={"runId": run.pk, "leaseExpiresAt": run.lease_expires_at},
        )
    run.renew_lease()
    run.save(update_fields=["lease_expires_at", "lease_renewals", "lease_renewed_at"])
    Agent.objects.filter(pk=run.agent_id).update(last_heartbeat_at=timezone.now())
    return run


@transaction.atomic
def run_finish(
    *,
    actor: Actor,
    run: HeartbeatRun,
    outcome: str,
    usage: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> HeartbeatRun:
    """The agent reports how its run ended. Locks it holds stay, now stale (DESIGN §3).

    Repeating the status the run already has answers it unchanged; another status (a run the
    board cancelled, say) is a 409 naming the current one.
    """
    _ensure_runs_own(actor, run)
    run = _lock_run(run)
    if run.is_terminal:
        if run.status == outcome:
            return run  # a retried finish (the first answer was lost): nothing changes
        raise _finished_conflict(run)
    previous = run.status
    run.finish(outcome)
    run.release_lease(outcome)  # its lease history ends here, whichever dialect finished it
    run.usage = usage or {}
    run.result = result or {}
    run.error = error
    run.save()
    log_change(actor, run, "run.finished", {"status": {"from": previous, "to": run.status}})
    if run.usage:
        from issues.services.costs import record_run_usage  # issues builds on agents

        record_run_usage(actor, run, run.usage)
    return run


@transaction.atomic
def run_cancel(*, actor: Actor, run: HeartbeatRun) -> HeartbeatRun:
    """The board stops a run; the agent sees `cancelRequested` on its next heartbeat."""
    ensure_board(actor, run.company_id)
    run = _lock_run(run)
    if run.is_terminal:
        raise _finished_conflict(run)
    stop_run(actor, run, "cancelled_by_board", lease_reason="cancelled")
    return run


BUDGET_EXHAUSTED = "budget_exhausted"


def stop_run(actor: Actor, run: HeartbeatRun, reason: str, *, lease_reason: str = "") -> None:
    """Cancel a live run, locked by the caller: the agent reads `cancelRequested` on its next
    heartbeat."""
    previous = run.status
    run.cancel(reason)
    run.release_lease(lease_reason or reason)
    run.save()
    log_change(actor, run, "run.cancelled", {"status": {"from": previous, "to": run.status}})


@transaction.atomic
def agent_webhook_secret_rotate(*, actor: Actor, agent: Agent) -> str:
    """A new signing secret for wake deliveries; answered once, never shown again."""
    ensure_board(actor, agent.company_id)
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    agent.webhook_secret = new_webhook_secret()
    agent.save(update_fields=["webhook_secret", "updated_at"])
    log_change(actor, agent, "agent.webhook_secret_rotated")
    return agent.webhook_secret


# --- Teams (DESIGN §8): the board groups agents; an agent joins one through its `team` ---


def refuse_taken_team_name(company_id: str, name: str, *, team_id: str | None = None) -> None:
    """Team names are unique in a company, case-insensitively (the model's constraint): a 400
    naming the field, not an IntegrityError."""
    clash = Team.objects.for_company(company_id).filter(name__iexact=name)
    if team_id is not None:
        clash = clash.exclude(pk=team_id)
    if clash.exists():
        raise validation_error("name", "A team with this name already exists.")


@transaction.atomic
def team_create(*, actor: Actor, company: Company, data: dict[str, Any]) -> Team:
    """A new team of the company (board only); its name not taken in the company."""
    ensure_board(actor, company.pk)
    refuse_taken_team_name(company.pk, data.get("name", ""))
    team = Team.objects.create(company=company, **data)
    log_change(actor, team, "team.created", {"name": team.name})
    return team


@transaction.atomic
def team_update(*, actor: Actor, team: Team, changes: dict[str, Any]) -> Team:
    """Rename or describe a team (board only); an unchanged save logs nothing."""
    ensure_board(actor, team.company_id)
    team = Team.objects.select_for_update().get(pk=team.pk)
    if "name" in changes:
        refuse_taken_team_name(team.company_id, changes["name"], team_id=team.pk)
    save_changes(actor, team, changes)
    return team


@transaction.atomic
def team_delete(*, actor: Actor, team: Team) -> None:
    """Delete a team (board only); its agents and issues stay, without a team."""
    ensure_board(actor, team.company_id)
    log_change(actor, team, "team.deleted", {"name": team.name})
    team.delete()


# --- Webhook endpoints (DESIGN §9): where the board wants the company's events POSTed ---


def clean_webhook_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The endpoint fields as stored: `url` one the target rules allow (the same check as an
    `http` agent's wake URL: a 400 naming `url`), `events` known names or `["*"]`."""
    if "url" in fields:
        check_delivery_url(fields["url"])
    if "events" in fields:
        fields = {**fields, "events": clean_event_names(fields["events"])}
    return fields


@transaction.atomic
def webhook_create(*, actor: Actor, company: Company, data: dict[str, Any]) -> WebhookEndpoint:
    """A new endpoint of the company (board only), with a new signing secret: the caller answers
    it this once."""
    ensure_board(actor, company.pk)
    data = clean_webhook_fields(data)
    if "url" not in data or "events" not in data:
        raise ValidationFailed(
            details={
                name: ["This field is required."] for name in ("url", "events") if name not in data
            }
        )
    webhook = WebhookEndpoint.objects.create(company=company, secret=new_webhook_secret(), **data)
    log_change(actor, webhook, "webhook.created", {"url": webhook.url, "events": webhook.events})
    return webhook


@transaction.atomic
def webhook_update(
    *, actor: Actor, webhook: WebhookEndpoint, changes: dict[str, Any]
) -> WebhookEndpoint:
    """Change an endpoint's url, events, description or active flag (board only). Turning it
    active again clears the reason it was disabled; an unchanged save logs nothing."""
    ensure_board(actor, webhook.company_id)
    webhook = WebhookEndpoint.objects.select_for_update().get(pk=webhook.pk)
    changes = clean_webhook_fields(changes)
    if changes.get("active"):
        changes = {**changes, "disabled_reason": ""}
    save_changes(actor, webhook, changes)
    return webhook


@transaction.atomic
def webhook_delete(*, actor: Actor, webhook: WebhookEndpoint) -> None:
    """Delete an endpoint (board only) with its delivery log; pending deliveries stop."""
    ensure_board(actor, webhook.company_id)
    log_change(actor, webhook, "webhook.deleted", {"url": webhook.url})
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(*, actor: Actor, webhook: WebhookEndpoint) -> WebhookEndpoint:
    """A new signing secret (board only), answered this once; the old one signs nothing more,
    retries of earlier events included."""
    ensure_board(actor, webhook.company_id)
    webhook = WebhookEndpoint.objects.select_for_update().get(pk=webhook.pk)
    webhook.secret = new_webhook_secret()
    webhook.save(update_fields=["secret", "updated_at"])
    log_change(actor, webhook, "webhook.secret_rotated")
    return webhook


@transaction.atomic
def webhook_test(*, actor: Actor, webhook: WebhookEndpoint) -> WebhookDelivery:
    """Queue a `ping` event to this endpoint (board only), delivered by the worker like any
    event (signed, retried, logged), whether or not the endpoint is active or subscribed to
    `ping`: the board asked for this one. Answers the pending delivery."""
    ensure_board(actor, webhook.company_id)
    event = event_envelope(
        event_type=PING,
        company_id=webhook.company_id,
        actor=actor,
        data={"webhookId": webhook.pk, "url": webhook.url},
    )
    delivery = queue_attempt(webhook, event_id=event["id"], event_type=PING, payload=event)
    log_change(actor, webhook, "webhook.tested", {"eventId": event["id"]})
    return delivery


@transaction.atomic
def webhook_redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a logged delivery's event to its endpoint again, now (board only), whatever became of
    that attempt and whether or not the endpoint is active: the board asked for this one. Answers
    the pending attempt.

    It is the event's next attempt at that endpoint: the same event id (so the same `webhook-id`;
    receivers drop it if they already have it), the same payload, the attempt number continuing
    from the event's last one there, so the log reads as one history. A failed redelivery is
    retried on the rest of the backoff schedule from that number (none once the schedule is
    spent). If an attempt of the event is already waiting for its retry time, that one is made
    due now and answered, rather than starting a second line of retries."""
    ensure_board(actor, delivery.company_id)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    attempts = endpoint.deliveries.filter(event_id=delivery.event_id)
    redelivery = attempts.filter(status=WebhookDelivery.Status.PENDING).first()
    if redelivery is not None:
        redelivery.next_attempt_at = timezone.now()
        redelivery.save(update_fields=["next_attempt_at"])
        queue_webhook_delivery(redelivery)
    else:
        last = attempts.order_by("-attempt").values_list("attempt", flat=True).first()
        redelivery = queue_attempt(
            endpoint,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
            attempt=(last or 0) + 1,
        )
    log_change(
        actor,
        endpoint,
        "webhook.redelivered",
        {"eventId": delivery.event_id, "deliveryId": delivery.pk, "attempt": redelivery.attempt},
    )
    return redelivery


# -- process-adapter runs (agents.process) ---------------------------------------------------


def max_concurrent_runs(agent: Agent) -> int:
    return (agent.adapter_config or {}).get("maxConcurrentRuns", 1)


@transaction.atomic
def run_begin(run_id: str) -> HeartbeatRun | None:
    """Start a queued run of a process agent, or leave it queued: while the agent already has
    `maxConcurrentRuns` running, or may not work now (paused, its budget spent, awaiting
    approval). A terminated agent's run is cancelled. Locks the run, then the agent (the order a
    heartbeat takes them), so two workers never start more than the agent may run."""
    run = HeartbeatRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.status != HeartbeatRun.Status.QUEUED:
        return None
    agent = Agent.objects.select_for_update().get(pk=run.agent_id)
    if agent.status == Agent.Status.TERMINATED:
        stop_run(SYSTEM, run, "agent_terminated")
        return None
    if not agent.can_mutate:
        return None
    running = HeartbeatRun.objects.filter(agent=agent, status=HeartbeatRun.Status.RUNNING).live()
    if running.count() >= max_concurrent_runs(agent):
        return None
    run.start()
    run.save()
    log_change(SYSTEM, run, "run.started", {"status": {"from": "queued", "to": run.status}})
    run.agent = agent
    return run


def run_still_wanted(run_id: str) -> bool:
    """Whether a process should go on: its run was not cancelled (by the board, a budget, its
    agent's termination). A run the agent finished itself lets its command exit on its own."""
    return not HeartbeatRun.objects.filter(pk=run_id, status=HeartbeatRun.Status.CANCELLED).exists()


def run_renew(run_id: str, agent_id: str, *, tail: str, lease: bool) -> None:
    """The command is alive: keep the end of its output on the run, and (`lease`) push the
    run's lease on."""
    if lease:
        HeartbeatRun.objects.renew_lease(run_id, agent_id, min_interval_seconds=0)
    HeartbeatRun.objects.filter(pk=run_id).update(log_tail=tail)


@transaction.atomic
def run_exited(
    run_id: str, *, exit_code: int | None, log_path: str, timed_out: bool = False
) -> str:
    """The command ended: keep its output and exit code, and end the run by them (0 →
    succeeded, else failed; past its time → timed_out) unless it ended already (the agent
    finished it, the board cancelled it). Then the agent's next queued run may start."""
    from agents.process import save_log  # the process module calls the services

    run = _lock_run(HeartbeatRun(pk=run_id))
    # The agent's row too, as `run_begin` takes it: a run queued meanwhile is either seen by
    # `start_waiting_runs` below or started by its own task after this commits.
    Agent.objects.select_for_update().get(pk=run.agent_id)
    save_log(run, log_path)
    run.exit_code = exit_code
    previous = run.status
    if run.status == HeartbeatRun.Status.RUNNING:
        if timed_out:
            run.time_out()
            run.release_lease("timed_out")
        else:
            succeeded = exit_code == 0
            outcome = HeartbeatRun.Status.SUCCEEDED if succeeded else HeartbeatRun.Status.FAILED
            run.finish(outcome)
            run.release_lease(outcome)
            if exit_code is None:
                run.error = "The command could not be started"
            elif exit_code:
                run.error = f"The command exited with {exit_code}"
        run.exit_details = {**run.exit_details, "exitCode": exit_code}
    run.save()
    if run.status != previous:
        log_change(
            SYSTEM,
            run,
            "run.finished",
            {"status": {"from": previous, "to": run.status}, "exitCode": exit_code},
        )
    start_waiting_runs(run.agent_id)
    return run.status


def start_waiting_runs(agent_id: str) -> None:
    """Queue the agent's oldest waiting runs for the worker, as many as it may run at once
    (each checks again when it starts)."""
    from agents.process import queue_run, runs_process  # the process module calls the services

    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None or not runs_process(agent) or not agent.can_mutate:
        return
    waiting = HeartbeatRun.objects.filter(agent=agent, status=HeartbeatRun.Status.QUEUED)
    for run in waiting.order_by("created_at", "id")[: max_concurrent_runs(agent)]:
        queue_run(run)


def time_out_expired_runs(ids: list[str]) -> int:
    """Time out the runs among `ids` whose lease expired (`HeartbeatRunQuerySet.time_out_expired`,
    one UPDATE), and let their agents' waiting process runs start: a dead run no longer holds the
    agent's place. Answers how many were timed out."""
    count = HeartbeatRun.objects.time_out_expired(ids)
    if count:
        agents = HeartbeatRun.objects.filter(pk__in=ids).values_list("agent_id", flat=True)
        for agent_id in set(agents):
            start_waiting_runs(agent_id)
    return count
