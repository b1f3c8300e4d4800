from __future__ import annotations

from rest_framework import serializers

from companies.models import ActivityEvent, Company, Membership, User
from paperclip.api.serializers import CamelModelSerializer


class CompanySerializer(CamelModelSerializer):
    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "description",
            "issue_prefix",
            "issue_counter",
            "status",
            "budget_monthly_cents",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "issue_prefix", "issue_counter", "created_at", "updated_at"]


class CompanyCreateSerializer(CamelModelSerializer):
    class Meta:
        model = Company
        fields = ["name", "description", "budget_monthly_cents"]


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


class ActivitySerializer(CamelModelSerializer):
    class Meta:
        model = ActivityEvent
        fields = [
            "id",
            "company_id",
            "actor_type",
            "actor_id",
            "run_id",
            "action",
            "entity_type",
            "entity_id",
            "issue_id",
            "details",
            "created_at",
        ]
        read_only_fields = fields
