"""The board's template filters."""

from __future__ import annotations

from django import template

from paperclip.board import relative_time

register = template.Library()


@register.filter
def ago(moment) -> str:
    """`3 minutes ago`, or `just now`: as every list on the board says it."""
    return relative_time(moment) if moment else ""
