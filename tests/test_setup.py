"""A fresh clone is safe and works: the per-install secret, the SECRET_KEY rules, ops commands.

Each test runs `manage.py` in a subprocess with a clean environment (no SECRET_KEY, no DEBUG),
as an operator on a fresh clone does, with the var directory and the SQLite database in a
temporary directory so the project's own `var/` and `db.sqlite3` are never touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

MANAGE = Path(settings.BASE_DIR) / "manage.py"
BOARD_TOKEN = re.compile(r"pcb_[0-9a-f]{48}")
PRODUCTION_ADVICE = "Production must set SECRET_KEY to a random string of at least 50 characters"
PRINT_SECRET_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    """What a shell on a fresh clone has: no SECRET_KEY, no DEBUG, no DATABASE_URL of ours."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PAPERCLIP_VAR_DIR": str(home / "var"),
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh install: migrated and bootstrapped exactly as `make run` does, minus DEBUG."""
    home = tmp_path_factory.mktemp("clone")
    for args in (["migrate", "--noinput", "-v0"], ["bootstrap_demo", "-v0"]):
        result = manage(fresh_env(home), *args)
        assert result.returncode == 0, result.stderr
    return home


def test_fresh_clone_generates_a_private_secret_beside_the_demo_credentials(clone):
    var = clone / "var"
    secret = (var / "secret-key").read_text().strip()

    assert len(secret) >= 50
    assert (var / "secret-key").stat().st_mode & 0o077 == 0  # private to its owner
    assert (var / "demo-credentials.json").exists()
    assert secret not in {settings.SECRET_KEY, "django-insecure-paperclip-development-only"}


def test_every_process_of_an_install_signs_with_the_same_secret(clone):
    first = manage(fresh_env(clone), "shell", "--no-imports", "-c", PRINT_SECRET_KEY)
    with_debug = manage(
        fresh_env(clone, DEBUG="1"), "shell", "--no-imports", "-c", PRINT_SECRET_KEY
    )

    saved = (clone / "var" / "secret-key").read_text().strip()
    assert first.stdout.strip() == with_debug.stdout.strip() == saved


def test_two_installs_never_share_a_secret(clone, tmp_path):
    other = manage(fresh_env(tmp_path), "shell", "--no-imports", "-c", PRINT_SECRET_KEY)

    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() != (clone / "var" / "secret-key").read_text().strip()


def test_create_board_token_works_on_a_fresh_clone_and_says_what_production_must_set(clone):
    result = manage(fresh_env(clone), "create_board_token", "board")

    assert result.returncode == 0, result.stderr
    [token] = result.stdout.splitlines()
    assert BOARD_TOKEN.fullmatch(token)
    assert "SECRET_KEY is not set" in result.stderr
    assert PRODUCTION_ADVICE in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_release_stale_locks_works_on_a_fresh_clone_and_says_what_production_must_set(clone):
    result = manage(fresh_env(clone), "release_stale_locks")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "timed out 0 expired run(s); released 0 stale lock(s)\n"
    assert PRODUCTION_ADVICE in result.stderr


def test_commands_with_debug_on_print_no_production_warning(clone):
    result = manage(fresh_env(clone, DEBUG="1"), "release_stale_locks")

    assert result.returncode == 0, result.stderr
    assert "SECRET_KEY" not in result.stderr


def test_a_long_secret_key_from_the_environment_wins_and_silences_the_warning(clone):
    key = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"
    result = manage(
        fresh_env(clone, SECRET_KEY=key), "shell", "--no-imports", "-c", PRINT_SECRET_KEY
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key
    assert "SECRET_KEY is not set" not in result.stderr


@pytest.mark.parametrize("key", ["test-secret-key-not-for-production", "x" * 49])
def test_a_short_secret_key_with_debug_off_refuses_to_start_saying_what_to_set(tmp_path, key):
    result = manage(fresh_env(tmp_path, SECRET_KEY=key), "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"SECRET_KEY is {len(key)} characters long" in result.stderr
    assert PRODUCTION_ADVICE in result.stderr
    assert not (tmp_path / "var").exists()


def test_a_short_secret_key_is_accepted_for_local_development_with_debug_on(tmp_path):
    result = manage(fresh_env(tmp_path, SECRET_KEY="short", DEBUG="1"), "check")

    assert result.returncode == 0, result.stderr


def test_without_a_usable_var_dir_settings_refuse_saying_what_to_set(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")

    result = manage(fresh_env(tmp_path, PAPERCLIP_VAR_DIR=str(not_a_dir / "var")), "check")

    assert result.returncode != 0
    assert "SECRET_KEY is not set and no per-install secret could be kept in" in result.stderr
    assert PRODUCTION_ADVICE in result.stderr


def test_the_var_dir_is_git_ignored():
    paths = ["var/secret-key", "var/demo-credentials.json"]
    result = subprocess.run(
        ["git", "check-ignore", *paths], cwd=settings.BASE_DIR, capture_output=True, text=True
    )

    assert result.stdout.splitlines() == paths


IMPORT_WSGI = "import paperclip.wsgi; print('served')"


def test_a_server_with_debug_off_refuses_the_per_install_secret_saying_what_to_set(clone):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WSGI],
        env=fresh_env(clone),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr
    assert PRODUCTION_ADVICE in result.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {"SECRET_KEY": "k" * 60},
        {"DEBUG": "1"},
        {"PAPERCLIP_ALLOW_VAR_SECRET": "1"},
    ],
    ids=["secret-key-set", "debug-on", "single-host-opt-in"],
)
def test_a_server_starts_with_a_secret_key_with_debug_on_or_when_opted_in(clone, extra):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WSGI],
        env=fresh_env(clone, **extra),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"
