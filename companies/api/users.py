"""Board users: `GET /api/users/me`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from companies import selectors
from companies.models import Membership, User
from paperclip.api.serializers import CamelModelSerializer
from paperclip.api.viewsets import ScopedViewSet


class MembershipSerializer(CamelModelSerializer):
    company_name = serializers.CharField(source="company.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["company_id", "company_name", "role"]


class UserMeSerializer(CamelModelSerializer):
    is_instance_admin = serializers.BooleanField(source="is_superuser", read_only=True)
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_instance_admin",
            "memberships",
        ]


class UserViewSet(ScopedViewSet):
    @extend_schema(responses=UserMeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        """The board caller: id, username and company memberships."""
        user = selectors.user_me(self.actor)
        return Response(UserMeSerializer(user).data)
