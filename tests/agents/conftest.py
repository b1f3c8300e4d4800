"""Fixtures the agents' tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Where run logs are saved (a worker's too) and where this process's API reads them: a
    fresh filesystem storage per test."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root
