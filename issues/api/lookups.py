"""Resolving an issue named in the URL (id or identifier) inside the caller's scope."""

from __future__ import annotations

from issues.models import Issue
from paperclip.api.viewsets import found


class IssueLookupMixin:
    """Resolve `{pk}` / `{issue_pk}` as an issue id or identifier, inside the caller's scope."""

    def issue_by_ref(self, ref: str, queryset=None) -> Issue:
        queryset = queryset if queryset is not None else Issue.objects.visible_to(self.actor)
        return found(queryset.by_ref(ref))
