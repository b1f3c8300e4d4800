"""What a `/v1` route under `.../issues/{id}/...` acts on: the task, inside the company of the
path and the caller's scope (one place, for every such view), and who acts on it.

`/v1` has no `X-Paperclip-Run-Id` (003 names no such header): an agent acting on the task it is
running acts from the run holding it, which its claim created. The services then see what
`/api`'s header would have told them, and their run-ownership rules hold unchanged.
"""

from __future__ import annotations

import dataclasses

from django.utils.functional import cached_property

from issues.api.lookups import IssueLookupMixin
from issues.models import Issue
from paperclip.actors import Actor


class TaskScopeMixin(IssueLookupMixin):
    task_kwarg = "issue_pk"

    @cached_property
    def task(self) -> Issue:
        tasks = Issue.objects.visible_to(self.actor).for_company(self.company.pk)
        return self.issue_by_ref(self.kwargs[self.task_kwarg], tasks)

    def actor_on(self, issue: Issue) -> Actor:
        """The caller, acting from the task's current run when that run is its own and live
        and the request named none."""
        actor = self.actor
        if not actor.is_agent or actor.run_id is not None or issue.checkout_run_id is None:
            return actor
        run = issue.checkout_run
        if run.agent_id != actor.id or not run.is_live:
            return actor
        return dataclasses.replace(actor, run=run, run_id=run.pk)
