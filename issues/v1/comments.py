"""`/v1` task comments (DESIGN §8)."""

from __future__ import annotations

urlpatterns: list = []
