"""The data migration to Paperclip's project statuses loses nothing (DESIGN §5): active →
in_progress, paused → in_progress with `paused_at` set (so it keeps refusing checkout), and back
again when the migration is reversed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("issues", "0005_one_clock_timestamps")]
AFTER = [("issues", "0007_project_statuses_to_paperclip")]
LAST_UPDATE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_old_schema(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def old_projects(apps) -> dict[str, str]:
    Company = apps.get_model("companies", "Company")
    Project = apps.get_model("issues", "Project")
    company = Company.objects.create(name="Acme", issue_prefix="ACM")
    ids = {}
    for status in ("planned", "active", "paused", "completed", "cancelled"):
        project = Project.objects.create(
            id=f"prj_{status}", company=company, name=status, status=status
        )
        Project.objects.filter(pk=project.pk).update(updated_at=LAST_UPDATE)
        ids[status] = project.pk
    return ids


def test_stored_statuses_move_to_paperclips_and_a_paused_project_stays_paused(at_old_schema):
    ids = old_projects(at_old_schema)

    Project = migrate(AFTER).get_model("issues", "Project")

    after = {
        old: Project.objects.values_list("status", "paused_at", "pause_reason").get(pk=pk)
        for old, pk in ids.items()
    }
    assert after == {
        "planned": ("planned", None, ""),
        "active": ("in_progress", None, ""),
        "paused": ("in_progress", LAST_UPDATE, "manual"),
        "completed": ("completed", None, ""),
        "cancelled": ("cancelled", None, ""),
    }


def test_reversing_the_migration_gives_the_old_statuses_back(at_old_schema):
    ids = old_projects(at_old_schema)
    migrate(AFTER)

    Project = migrate(BEFORE).get_model("issues", "Project")

    assert {
        old: Project.objects.values_list("status", flat=True).get(pk=pk) for old, pk in ids.items()
    } == {status: status for status in ids}
