"""Admin tests: a staff login, the changelist, the change page and the transition buttons."""

from __future__ import annotations

import html
import re
from typing import Any


def form_data(response) -> dict[str, Any]:
    """The admin form on `response` as a browser would submit it untouched (inlines included)."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    return {
        form[name].html_name: value
        for form in forms
        for name in form.fields
        if (value := form[name].value()) is not None
    }


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def buttons(response) -> list[str]:
    """The transition buttons on a change page, in page order."""
    return re.findall(r'name="_fsm_transition_to"\s+value="(\w+)"', response.content.decode())


def change_link(changelist, label: str) -> str:
    """The change-page link the changelist renders for the row labelled `label` (its quoted pk,
    `iss_5F01…`, as a user's click follows it)."""
    page = changelist.content.decode()
    [href] = re.findall(rf'<a href="([^"]*/change/[^"]*)"[^>]*>{re.escape(label)}</a>', page)
    return html.unescape(href)


def press(client, url: str, transition: str, **edits):
    """Submit the change page at `url` with one transition button, as the browser does."""
    data = form_data(client.get(url)) | edits
    return client.post(url, data | {"_fsm_transition_to": transition}, follow=True)
