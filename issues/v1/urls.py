"""Every `/v1` route of the issues app: each module lists its own (bulk before the task routes,
whose `{id}` would otherwise take "bulk")."""

from __future__ import annotations

from issues.v1 import bulk, comments, costs, runs, tasks

urlpatterns = [*bulk.urlpatterns, *tasks.urlpatterns, *comments.urlpatterns, *runs.urlpatterns]
urlpatterns += costs.urlpatterns
