"""One clock for a row's `created_at` and `updated_at`.

Django's `auto_now_add` and `auto_now` (or a `default=timezone.now` beside them) each read the
clock on their own, so a new row came out with `updatedAt` a few microseconds after, or even
before, its `createdAt`. Models using `OneClockTimestamps` declare both fields as
`models.DateTimeField(default=timezone.now, editable=False)`; a new instance then holds one
reading in both (a value the caller gives for one of them is used for the other too), and a
later `save()` stamps `updated_at`, as `auto_now` did (only when it is among `update_fields`, if
those are given). Queryset `.update()` calls set `updated_at` themselves, as before.
"""

from __future__ import annotations

from django.utils import timezone


class OneClockTimestamps:
    """Mixin for a model with `created_at` and `updated_at` (see the module docstring).

    `stamp_updated_at_on_save = False` for a model whose services set `updated_at` themselves
    (the issue: only a change a reader should see moves it).
    """

    stamp_updated_at_on_save = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if args:  # Model.from_db passes a loaded row positionally
            return
        if "updated_at" not in kwargs:
            self.updated_at = self.created_at
        elif "created_at" not in kwargs:
            self.created_at = self.updated_at

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if (
            self.stamp_updated_at_on_save
            and not self._state.adding
            and (update_fields is None or "updated_at" in update_fields)
        ):
            self.updated_at = timezone.now()
        super().save(*args, **kwargs)
