"""Board users authenticate with a personal token (`Bearer pcb_...`) or an admin session."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication

from companies.models import BoardToken, User, hash_token
from paperclip.actors import Actor
from paperclip.api.authentication import BearerAuthentication, bearer_token, touch_last_used

BOARD_TOKEN_PREFIX = "pcb_"


def board_actor(user: User, credential: BoardToken | None = None) -> Actor:
    seats = list(user.memberships.values_list("company_id", "role"))
    return Actor(
        type="user",
        id=user.pk,
        user=user,
        company_ids=frozenset(company for company, _ in seats),
        writable_company_ids=frozenset(company for company, role in seats if role != "viewer"),
        is_instance_admin=user.is_superuser,
        credential=credential,
    )


class BoardTokenAuthentication(BearerAuthentication):
    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or not token.startswith(BOARD_TOKEN_PREFIX):
            return None
        self.presented(request, token)
        board_token = (
            BoardToken.objects.active()
            .select_related("user")
            .filter(token_hash=hash_token(token))
            .first()
        )
        if board_token is None or not board_token.user.is_active:
            raise self.failed(request, token)
        touch_last_used(BoardToken.objects, board_token)
        return board_token.user, board_actor(board_token.user, board_token)


class BoardSessionAuthentication(SessionAuthentication):
    """The admin's session, with CSRF enforced on unsafe methods (DRF's own rule)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        return user, board_actor(user)
