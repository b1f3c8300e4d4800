"""Every `/v1` route of the issues app: each module lists its own."""

from __future__ import annotations

from issues.v1 import comments, runs, tasks

urlpatterns = [*tasks.urlpatterns, *comments.urlpatterns, *runs.urlpatterns]
