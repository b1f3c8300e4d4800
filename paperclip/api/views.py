"""Cross-cutting endpoints: the health check."""

from __future__ import annotations

from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from paperclip.errors import Unavailable


@extend_schema(
    responses=inline_serializer(
        "Health", {"status": serializers.CharField(), "database": serializers.CharField()}
    )
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """For load balancers and operators: 200 when the database answers, else 503. No auth."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        raise Unavailable("Database unavailable", details={"database": "down"}) from None
    return Response({"status": "ok", "database": "ok"})
