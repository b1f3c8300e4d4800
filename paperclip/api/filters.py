"""Query filters shared by the apps' filter sets."""

from __future__ import annotations

import django_filters

from paperclip.ids import parse_id


class IdFilter(django_filters.CharFilter):
    """An id in either wire form (prefixed or UUID); a value that is neither matches nothing."""

    def __init__(self, *args, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        pk = parse_id(value, self.prefix)
        return super().filter(qs, pk) if pk else qs.none()
