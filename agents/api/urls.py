from agents.api.views import AgentViewSet
from paperclip.api.viewsets import ID, route

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
    *[
        route(
            rf"agents/(?P<pk>{ID})/{verb}",
            AgentViewSet.as_view({"post": verb}),
            name=f"agent-{verb}",
        )
        for verb in ("keys", "pause", "resume", "terminate")
    ],
]
