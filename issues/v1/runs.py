"""`/v1` runs and the agent plane (DESIGN §8)."""

from __future__ import annotations

urlpatterns: list = []
