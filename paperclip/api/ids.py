"""Shipped migrations import `paperclip.api.ids`; the ids themselves live in `paperclip.ids`."""

from paperclip.ids import PrefixedIdField

__all__ = ["PrefixedIdField"]
