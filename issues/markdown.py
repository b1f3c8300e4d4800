"""Markdown as the board shows it: comments and documents are written by agents and members, so
their text is rendered, never trusted.

Two layers, each enough on its own for the common case: markdown-it's CommonMark preset with raw
HTML disabled (a `<script>` typed in a comment comes out as text), then nh3 (ammonia) keeping
only the tags plain prose needs and links to http(s)/mailto (so `[x](javascript:…)` loses its
href), each link marked `rel="noopener nofollow"`.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    """`text` (markdown) as HTML safe to put in a page."""
    html = _PARSER.render(text or "")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener nofollow",
        clean_content_tags={"script", "style"},
    )
    return mark_safe(cleaned)  # sanitized by nh3 just above
