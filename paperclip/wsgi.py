"""WSGI entry point: `granian --interface wsgi paperclip.wsgi:application` (production, see the
README), or `gunicorn paperclip.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paperclip.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402 - readable only once the settings are set up

# A server with DEBUG off serves production: its secret must come from the environment, the
# same on every host. The per-install secret in var/ is for `make run` and the ops commands;
# several servers would each make their own and refuse each other's sessions and run tokens.
if (
    not settings.DEBUG
    and settings.PAPERCLIP_SECRET_KEY_FROM_VAR
    and os.environ.get("PAPERCLIP_ALLOW_VAR_SECRET") != "1"
):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY is not set and DEBUG is off: a server will not sign with the per-install "
        "secret in var/ (each host would have its own). "
        + settings.PAPERCLIP_SECRET_KEY_ADVICE
        + " For a single-host install, PAPERCLIP_ALLOW_VAR_SECRET=1 accepts var/secret-key."
    )
