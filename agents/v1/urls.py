from __future__ import annotations

from agents.v1 import teams, webhooks
from agents.v1.whoami import WhoAmIView
from paperclip.api.viewsets import route

urlpatterns = [
    route("whoami", WhoAmIView.as_view(), name="v1-whoami"),
    *teams.urlpatterns,
    *webhooks.urlpatterns,
]
