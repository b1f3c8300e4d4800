"""Create a personal API token for a board user and print only the token.

    python manage.py create_board_token USERNAME [--name NAME]

The token (`pcb_...`) is shown once and stored only as a hash, so stdout holds exactly that one
line and a script can capture it: `TOKEN=$(python manage.py create_board_token alice)`. With
`--verbosity 2` a note naming the token's id goes to stderr.

Like every command, it works on a fresh clone with nothing set (the SQLite file and the
per-install secret in `var/`, as `make run` uses); with DEBUG off and no SECRET_KEY, the system
check warns on stderr what production must set, and stdout still holds only the token.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from companies.services import board_token_create


class Command(BaseCommand):
    help = "Create a personal API token (pcb_...) for a board user and print only the token."

    def add_arguments(self, parser):
        parser.add_argument("username", help="the board user's username")
        parser.add_argument(
            "--name", default="cli", help="a label to recognise the token by (default: cli)"
        )

    def handle(self, *args, username: str, name: str, verbosity: int, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user with username {username!r}.") from None
        if not user.is_active:
            # The token would be refused on every request; better to say so now.
            raise CommandError(f"User {username!r} is inactive; activate it first.")
        board_token, token = board_token_create(user=user, name=name)
        # The token is the command's result, not chatter: it is printed at every verbosity.
        self.stdout.write(token)
        if verbosity >= 2:
            self.stderr.write(
                f"Created board token {board_token.pk} ({name!r}) for {username!r}; "
                "it is shown only this once."
            )
