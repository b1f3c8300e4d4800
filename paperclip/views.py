"""The front door: `GET /` is a small page pointing at the board, the API docs and health."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """What a person who opens the instance's URL needs: where to go next."""
    return render(
        request,
        "home.html",
        {
            "title": settings.SPECTACULAR_SETTINGS["TITLE"],
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
        },
    )
