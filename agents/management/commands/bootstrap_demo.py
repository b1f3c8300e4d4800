"""Bootstrap a demo company for local development (`make run` calls it); safe to run again.

Ensures that there are:

- a superuser `board` (the admin login and the board's API identity),
- the company "Demo Company", with `board` as its owner,
- the agents "CEO" and "Engineer" (reporting to the CEO), each with an API key,
- the Engineer run by the process adapter with the example agent (`examples/paperclip_agent.py`,
  on this Python), so an issue assigned to it is worked on by the worker (`make run` starts it);
  an Engineer the board gave another adapter or command is left as it is,
- a personal API token for `board`.

Passwords, keys and tokens are stored hashed, so the plain demo credentials are kept in a
git-ignored JSON file: `var/demo-credentials.json` (in `PAPERCLIP_VAR_DIR`, beside the
per-install `secret-key` the settings generate) unless `--credentials PATH`, the
`PAPERCLIP_DEMO_CREDENTIALS` setting or the `PAPERCLIP_DEMO_CREDENTIALS` environment variable say
otherwise. A later run reuses every credential that still works and regenerates only the ones
that do not (a changed password, a revoked key, a lost file), so the printed keys stay the same.

Prints the credentials with ready-to-paste curl commands; `--verbosity 0` prints nothing,
`--json` prints the credentials as JSON, `--dry-run` lists what would change and changes nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.models import Agent, AgentApiKey
from agents.services import agent_create, agent_key_create, agent_update
from companies.models import BoardToken, Company, Membership, User, hash_token
from companies.services import board_token_create, company_create, membership_grant
from paperclip.actors import SYSTEM
from paperclip.api.wire import to_wire

BOARD_USERNAME = "board"
COMPANY_NAME = "Demo Company"
CREDENTIAL_NAME = "demo"
EXAMPLE_AGENT = Path(settings.BASE_DIR) / "examples" / "paperclip_agent.py"
# In creation order: a manager comes before the agents who report to it.
AGENTS = (
    {"name": "CEO", "role": Agent.Role.CEO, "title": "Chief Executive Officer", "reports_to": None},
    {
        "name": "Engineer",
        "role": Agent.Role.ENGINEER,
        "title": "Software Engineer",
        "reports_to": "CEO",
        "runs_example": True,
    },
)


def credentials_path(option: str | None) -> Path:
    """The option, else the setting, else the environment variable, else the var directory
    (PAPERCLIP_VAR_DIR, `var/` in the project), beside the per-install secret."""
    value = (
        option
        or getattr(settings, "PAPERCLIP_DEMO_CREDENTIALS", "")
        or os.environ.get("PAPERCLIP_DEMO_CREDENTIALS", "")
    )
    if value:
        return Path(value).expanduser()
    var_dir = getattr(settings, "PAPERCLIP_VAR_DIR", None) or Path(settings.BASE_DIR) / "var"
    return Path(var_dir) / "demo-credentials.json"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Command(BaseCommand):
    help = (
        "Create (or reuse) the demo board user, company, agents and their credentials, "
        "and print how to log in."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--credentials",
            metavar="PATH",
            help="where the plain demo credentials are kept (default: var/demo-credentials.json)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would change; change nothing"
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the credentials as JSON"
        )

    def handle(
        self,
        *args,
        credentials: str | None,
        dry_run: bool,
        as_json: bool,
        verbosity: int,
        **options,
    ) -> None:
        path = credentials_path(credentials)
        saved = self.load(path, verbosity)
        self.changes: list[str] = []
        with transaction.atomic():
            demo = self.ensure_demo(saved)
            if dry_run:
                transaction.set_rollback(True)
            elif demo != saved:
                # Inside the transaction: if the file cannot be written, nothing is created
                # whose plain credentials would be lost.
                self.save(path, demo)

        if verbosity == 0:
            return
        if dry_run:
            self.report_dry_run()
        elif as_json:
            # For clients of /api, with its ids (UUIDs); the file keeps the stored ones.
            self.stdout.write(json.dumps(to_wire(demo), indent=2))
        else:
            self.report(demo, path)

    # -- the credentials file -------------------------------------------------------------

    def load(self, path: Path, verbosity: int) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            if verbosity >= 1:
                self.stderr.write(
                    self.style.WARNING(f"Ignoring unreadable {path} ({exc}); regenerating it.")
                )
            return {}
        return _dict(data)

    def save(self, path: Path, demo: dict[str, Any]) -> None:
        """Write atomically and readable by the owner only (mkstemp creates it 0600)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as file:
                    json.dump(demo, file, indent=2)
                    file.write("\n")
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CommandError(f"Cannot write the demo credentials to {path}: {exc}") from exc

    # -- the demo objects -----------------------------------------------------------------

    def ensure_demo(self, saved: dict[str, Any]) -> dict[str, Any]:
        saved_board = _dict(saved.get("board"))
        user, password = self.ensure_board_user(_str(saved_board.get("password")))
        company = self.ensure_company(_str(_dict(saved.get("company")).get("id")), user)
        token = self.ensure_board_token(user, _str(saved_board.get("token")))

        saved_list = saved.get("agents")
        saved_agents = (
            {_str(entry.get("name")): entry for entry in map(_dict, saved_list)}
            if isinstance(saved_list, list)
            else {}
        )
        agents = []
        created: dict[str, Agent] = {}
        for spec in AGENTS:
            entry = _dict(saved_agents.get(spec["name"]))
            agent = self.ensure_agent(company, spec, _str(entry.get("id")), created)
            created[spec["name"]] = agent
            if spec.get("runs_example"):
                agent = self.ensure_example_adapter(agent)
            key = self.ensure_agent_key(agent, _str(entry.get("apiKey")))
            agents.append(
                {
                    "name": agent.name,
                    "id": agent.pk,
                    "role": agent.role,
                    "status": agent.status,
                    "apiKey": key,
                }
            )

        return {
            "board": {"username": user.username, "password": password, "token": token},
            "company": {
                "id": company.pk,
                "name": company.name,
                "issuePrefix": company.issue_prefix,
            },
            "agents": agents,
        }

    def ensure_board_user(self, saved_password: str) -> tuple[User, str]:
        user = get_user_model().objects.filter(username=BOARD_USERNAME).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = get_user_model().objects.create_superuser(
                username=BOARD_USERNAME, email="", password=password
            )
            self.changes.append(f"created superuser {BOARD_USERNAME!r}")
            return user, password

        if not (user.is_active and user.is_staff and user.is_superuser):
            user.is_active = user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_active", "is_staff", "is_superuser"])
            self.changes.append(f"made {BOARD_USERNAME!r} an active superuser again")
        if saved_password and user.check_password(saved_password):
            return user, saved_password
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        self.changes.append(f"set a new password for {BOARD_USERNAME!r} (the saved one failed)")
        return user, password

    def ensure_company(self, saved_id: str, user: User) -> Company:
        company = (saved_id and Company.objects.filter(pk=saved_id).first()) or (
            Company.objects.filter(name=COMPANY_NAME).order_by("created_at").first()
        )
        if company is None:
            company = company_create(actor=SYSTEM, name=COMPANY_NAME)
            self.changes.append(f"created company {COMPANY_NAME!r} ({company.issue_prefix})")
        if not user.memberships.filter(company=company, role=Membership.Role.OWNER).exists():
            membership_grant(user=user, company=company)
            self.changes.append(f"made {BOARD_USERNAME!r} an owner of {company.name!r}")
        return company

    def ensure_board_token(self, user: User, saved_token: str) -> str:
        if (
            saved_token
            and (
                BoardToken.objects.active().filter(user=user, token_hash=hash_token(saved_token))
            ).exists()
        ):
            return saved_token
        _, token = board_token_create(user=user, name=CREDENTIAL_NAME)
        self.changes.append(f"created a board API token for {BOARD_USERNAME!r}")
        return token

    def ensure_agent(
        self, company: Company, spec: dict[str, Any], saved_id: str, created: dict[str, Agent]
    ) -> Agent:
        agents = Agent.objects.for_company(company.pk)
        agent = (saved_id and agents.filter(pk=saved_id).first()) or (
            agents.filter(name__iexact=spec["name"]).first()
        )
        if agent is not None:
            return agent
        agent = agent_create(
            actor=SYSTEM,
            company=company,
            data={
                "name": spec["name"],
                "role": spec["role"],
                "title": spec["title"],
                "reports_to": created.get(spec["reports_to"]) if spec["reports_to"] else None,
            },
        )
        self.changes.append(f"created agent {agent.name!r} ({agent.role})")
        return agent

    def ensure_example_adapter(self, agent: Agent) -> Agent:
        """The process adapter running the example agent with this interpreter (the venv's), at
        this checkout's path. Set on an agent with no command yet, and refreshed when it is the
        example at another path (a moved checkout); a command the board chose is kept."""
        config = {
            "command": sys.executable,
            "args": [str(EXAMPLE_AGENT)],
            "timeoutSec": 120,
            "graceSec": 5,
        }
        current = agent.adapter_config or {}
        args = current.get("args") or [""]
        ours = not current.get("command") or str(args[-1]).endswith("examples/paperclip_agent.py")
        if agent.adapter_type != Agent.Adapter.PROCESS or not ours or current == config:
            return agent
        agent = agent_update(actor=SYSTEM, agent=agent, changes={"adapter_config": config})
        self.changes.append(f"set agent {agent.name!r} to run {EXAMPLE_AGENT.name}")
        return agent

    def ensure_agent_key(self, agent: Agent, saved_key: str) -> str:
        if (
            saved_key
            and (
                AgentApiKey.objects.active().filter(agent=agent, token_hash=hash_token(saved_key))
            ).exists()
        ):
            return saved_key
        _, key = agent_key_create(actor=SYSTEM, agent=agent, name=CREDENTIAL_NAME)
        self.changes.append(f"created an API key for agent {agent.name!r}")
        return key

    # -- output ---------------------------------------------------------------------------

    def report_dry_run(self) -> None:
        if not self.changes:
            self.stdout.write("Dry run: the demo is complete; nothing would change.")
            return
        self.stdout.write(f"Dry run: {len(self.changes)} change(s) would be made:")
        for change in self.changes:
            self.stdout.write(f"  - {change}")

    def report(self, demo: dict[str, Any], path: Path) -> None:
        base = settings.PAPERCLIP_API_URL.rstrip("/")
        demo = to_wire(demo)  # ids as /api writes them, for pasting into its clients
        board, company = demo["board"], demo["company"]
        write = self.stdout.write

        if self.changes:
            write(self.style.SUCCESS(f"Demo bootstrapped ({len(self.changes)} change(s)):"))
            for change in self.changes:
                write(f"  - {change}")
        else:
            write(self.style.SUCCESS("Demo already complete; reusing the saved credentials."))
        write(f"Plain credentials are kept in {self.display_path(path)} (keep it private).")
        if getattr(settings, "PAPERCLIP_SECRET_KEY_FROM_VAR", False):
            secret = Path(settings.PAPERCLIP_VAR_DIR) / "secret-key"
            write(f"This install signs with its own secret, kept in {self.display_path(secret)}.")
        write("")
        write(f"Admin     {base}/admin/")
        write(f"          username: {board['username']}")
        write(f"          password: {board['password']}")
        write(f"Company   {company['name']}  id {company['id']}  prefix {company['issuePrefix']}")
        write(f"Board     API token {board['token']}")
        write(f"          curl -H 'Authorization: Bearer {board['token']}' {base}/api/companies")
        for agent in demo["agents"]:
            status = "" if agent["status"] == Agent.Status.ACTIVE else f"  ({agent['status']})"
            write(f"Agent     {agent['name']}  id {agent['id']}{status}")
            write(f"          API key {agent['apiKey']}")
            write(
                f"          curl -H 'Authorization: Bearer {agent['apiKey']}' {base}/api/agents/me"
            )
        write("Paperclip's CLI, as the board (README: Paperclip's CLI):")
        write(
            f"          scripts/paperclip-cli context set --api-base {base}"
            f" --company-id {company['id']} --api-key-env-var-name PAPERCLIP_API_KEY --use"
        )
        write(f"          export PAPERCLIP_API_KEY={board['token']}")

    @staticmethod
    def display_path(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)
