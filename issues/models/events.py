"""The domain-event outbox (DESIGN §9): one row per event, written in the transaction of the
activity row it reports, handed to the webhook endpoints by `issues.events.dispatch_events`."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from companies.models import Company
from paperclip.ids import PrefixedIdField


class EventQuerySet(models.QuerySet):
    def undispatched(self):
        """Events no dispatcher has committed yet, oldest first."""
        return self.filter(dispatched_at__isnull=True).order_by("created_at", "id")

    def prunable(self, before):
        """Events retention may delete (`manage.py prune`): dispatched before `before`. Their
        delivery attempts carry their own copy of the payload, so nothing needs the row once it
        is fanned out; an undispatched event stays whatever its age."""
        return self.filter(dispatched_at__lt=before)


class Event(models.Model):
    """An event as a receiver gets it (`payload`, the whole envelope, built when it happened), and
    whether it has been fanned out to the endpoints (`dispatched_at`)."""

    id = PrefixedIdField(prefix="evt")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=64)
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The dispatcher's pick: undispatched events, oldest first. Partial, so it holds only
            # the few events in flight, not the history.
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(dispatched_at__isnull=True),
                name="event_undispatched",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.pk}"
