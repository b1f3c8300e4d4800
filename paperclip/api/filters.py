"""Query filters shared by the apps' filter sets."""

from __future__ import annotations

import django_filters

from paperclip.ids import ids_of_any_kind, parse_id


class IdFilter(django_filters.CharFilter):
    """An id in either wire form (prefixed or UUID) of the kind `prefix` names, or of any kind
    when it is None (an activity row's entity); a value that is neither matches nothing."""

    def __init__(self, *args, prefix: str | None, **kwargs):
        self.prefix = prefix
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        if self.prefix is None:
            return qs.filter(**{f"{self.field_name}__in": ids_of_any_kind(value)})
        pk = parse_id(value, self.prefix)
        return super().filter(qs, pk) if pk else qs.none()
