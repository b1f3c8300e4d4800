"""Stored project statuses move to Paperclip's vocabulary (DESIGN §5), nothing lost:

    active  → in_progress
    paused  → in_progress, paused_at = its last update, pause_reason "manual"
    planned, completed, cancelled: unchanged

Backwards: a paused project (paused_at set) that is not completed or cancelled is "paused"
again, in_progress is "active", and backlog (which the old vocabulary lacked) is "planned".
(The pause columns themselves go when 0006 is reversed.)
"""

from django.db import migrations
from django.db.models import F


def forwards(apps, schema_editor):
    Project = apps.get_model("issues", "Project")
    Project.objects.filter(status="paused").update(
        status="in_progress", paused_at=F("updated_at"), pause_reason="manual"
    )
    Project.objects.filter(status="active").update(status="in_progress")


def backwards(apps, schema_editor):
    Project = apps.get_model("issues", "Project")
    Project.objects.filter(paused_at__isnull=False).exclude(
        status__in=["completed", "cancelled"]
    ).update(status="paused")
    Project.objects.filter(status="in_progress").update(status="active")
    Project.objects.filter(status="backlog").update(status="planned")


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0006_project_pause_and_paperclip_statuses"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
