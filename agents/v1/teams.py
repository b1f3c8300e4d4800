"""`/v1` teams (DESIGN §8)."""

from __future__ import annotations

urlpatterns: list = []
