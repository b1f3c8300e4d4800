"""`/v1` bulk operations on tasks (DESIGN §8)."""

from __future__ import annotations

urlpatterns: list = []
