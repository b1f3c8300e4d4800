from agents.api.agents import AgentViewSet
from agents.api.runs import HeartbeatRunViewSet
from agents.api.teams import TeamViewSet
from agents.api.webhooks import WebhookViewSet
from paperclip.api.viewsets import ID, route

AGENT_VERBS = {
    "keys": "keys",
    "pause": "pause",
    "resume": "resume",
    "terminate": "terminate",
    "wakeup": "wakeup",
    "heartbeat/invoke": "invoke",
    "webhook-secret": "webhook_secret",
}
RUN_VERBS = ("start", "heartbeat", "finish", "cancel")

urlpatterns = [
    route("agents/me", AgentViewSet.as_view({"get": "me"}), name="agent-me"),
    route(
        rf"companies/(?P<company_pk>{ID})/agents",
        AgentViewSet.as_view({"get": "list", "post": "create"}),
        name="company-agents",
    ),
    route(
        rf"agents/(?P<pk>{ID})",
        AgentViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="agent",
    ),
    route(
        rf"agents/(?P<pk>{ID})/budgets",
        AgentViewSet.as_view({"patch": "budgets"}),
        name="agent-budgets",
    ),
    *[
        route(rf"agents/(?P<pk>{ID})/{path}", AgentViewSet.as_view({"post": verb}))
        for path, verb in AGENT_VERBS.items()
    ],
    route(
        rf"companies/(?P<company_pk>{ID})/heartbeat-runs",
        HeartbeatRunViewSet.as_view({"get": "list"}),
        name="company-runs",
    ),
    route(
        rf"heartbeat-runs/(?P<pk>{ID})",
        HeartbeatRunViewSet.as_view({"get": "retrieve"}),
        name="run",
    ),
    *[
        route(rf"heartbeat-runs/(?P<pk>{ID})/{verb}", HeartbeatRunViewSet.as_view({"post": verb}))
        for verb in RUN_VERBS
    ],
    route(
        rf"companies/(?P<company_pk>{ID})/teams",
        TeamViewSet.as_view({"get": "list", "post": "create"}),
        name="company-teams",
    ),
    route(
        rf"teams/(?P<pk>{ID})",
        TeamViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="team",
    ),
    route(
        rf"companies/(?P<company_pk>{ID})/webhooks",
        WebhookViewSet.as_view({"get": "list", "post": "create"}),
        name="company-webhooks",
    ),
    route(
        rf"webhooks/(?P<pk>{ID})",
        WebhookViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="webhook",
    ),
    route(
        rf"webhooks/(?P<pk>{ID})/rotate-secret",
        WebhookViewSet.as_view({"post": "rotate_secret"}),
        name="webhook-rotate-secret",
    ),
    route(
        rf"webhooks/(?P<pk>{ID})/test",
        WebhookViewSet.as_view({"post": "test"}),
        name="webhook-test",
    ),
    route(
        rf"webhooks/(?P<pk>{ID})/deliveries",
        WebhookViewSet.as_view({"get": "deliveries"}),
        name="webhook-deliveries",
    ),
    route(
        rf"webhooks/(?P<pk>{ID})/deliveries/(?P<delivery_pk>{ID})/redeliver",
        WebhookViewSet.as_view({"post": "redeliver"}),
        name="webhook-delivery-redeliver",
    ),
    route(
        rf"heartbeat-runs/(?P<pk>{ID})/log",
        HeartbeatRunViewSet.as_view({"get": "log"}),
        name="run-log",
    ),
]
