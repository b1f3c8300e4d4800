"""The README's deploy recipe holds: `check --deploy` is clean under exactly the production
environment it documents, and the health check it tells load balancers to use answers over plain
HTTP while everything else is redirected to HTTPS (issue 16)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


def documented_production_env() -> dict[str, str]:
    """The `KEY=value` lines of the README block marked `<!-- production-env -->`, with its
    `<placeholders>` filled in as an operator would."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "README: the production environment block is missing"
    filled = {"SECRET_KEY": secrets.token_urlsafe(60)}
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        env[name] = filled.get(name, re.sub(r"<[^>]*>", "placeholder", value))
    return env


def test_the_documented_production_environment_passes_check_deploy():
    env = documented_production_env()
    passthrough = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}

    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**passthrough, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert env["DEBUG"] == "0" and len(env) >= 15
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.django_db
def test_the_health_check_is_answered_over_plain_http_when_https_is_enforced(settings):
    settings.SECURE_SSL_REDIRECT = True
    client = APIClient()  # a new client: its middleware reads the settings as they are now

    health = client.get("/api/health")
    other = client.get("/api/openapi.json")

    assert health.status_code == 200
    assert other.status_code == 301 and other["Location"].startswith("https://")
