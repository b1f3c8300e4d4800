"""System checks: say what a production deployment must set when the settings fall back to the
development defaults that keep a fresh clone working."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def secret_key_from_environment(app_configs, **kwargs) -> list[Warning]:
    """With DEBUG off (production's default) but no SECRET_KEY in the environment, every command
    still works on a fresh clone with the per-install secret, and warns what production must
    set (DATABASE_URL too, while the database is the default SQLite file)."""
    if settings.DEBUG or not getattr(settings, "PAPERCLIP_SECRET_KEY_FROM_VAR", False):
        return []
    hint = (
        f"Production must set SECRET_KEY to a random string of at least "
        f"{settings.SECRET_KEY_MIN_LENGTH} characters, the same on every host"
    )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        hint += ", and DATABASE_URL to its PostgreSQL database (postgres://user:pass@host/name)"
    return [
        Warning(
            "SECRET_KEY is not set: signing with the per-install secret in "
            f"{settings.PAPERCLIP_VAR_DIR / 'secret-key'} (fine for a local install only).",
            hint=hint + ".",
            id="paperclip.W001",
        )
    ]
