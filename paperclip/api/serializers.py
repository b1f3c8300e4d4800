"""Serializer pieces shared by every app: camelCase on the wire, unknown fields refused, named
integer choices."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.fields import empty, is_simple_callable

from paperclip.naming import camel

UNKNOWN_FIELD = "Unknown field."


class CamelCaseMixin:
    """Expose snake_case fields under camelCase names (`assignee_agent_id` → `assigneeAgentId`).

    Validation errors are keyed by the same camelCase names, so `details` names the field the
    client sent.
    """

    def __getattr__(self, name: str):
        # DRF looks for `validate_<field name>` under the wire name (validate_adapterConfig);
        # let the hook keep its Python name (validate_adapter_config).
        if name.startswith("validate_"):
            snake = "validate_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name[9:]).lower()
            if snake != name:
                return getattr(self, snake)
        raise AttributeError(name)

    def get_fields(self):
        fields = super().get_fields()
        renamed = {}
        for name, field in fields.items():
            if isinstance(field, serializers.SerializerMethodField) and field.method_name is None:
                field.method_name = f"get_{name}"
            elif field.source is None and "_" in name:
                field.source = name
            renamed[camel(name)] = field
        return renamed


_model_fields_cache: dict[type, dict] = {}


class RefuseUnknownFieldsMixin:
    """An input field the serializer does not have is an error, not silently dropped:
    `{"assignedAgentId": ["Unknown field."]}` (a typo would otherwise create an unassigned issue).

    "Unknown" means not a field of the serializer at all. A read-only field it has (`id`,
    `createdAt` on a model serializer) is ignored as DRF always did, so a client may send back
    the object it read. Checked in `run_validation`, so nested serializers and `many=True`
    items are checked too, and a message of the serializer's own `validate()` about a field it
    refuses on purpose (`runId` on checkout) wins over the generic one.
    """

    def run_validation(self, data=empty):
        unknown = {}
        if isinstance(data, Mapping):
            fields = self.fields
            unknown = {name: [UNKNOWN_FIELD] for name in data if name not in fields}
        try:
            value = super().run_validation(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, Mapping):
                raise serializers.ValidationError({**unknown, **exc.detail}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        if isinstance(value, dict):
            for field in self.fields.values():
                if isinstance(field, NeutralField):
                    value.pop(field.source, None)
        return value


class CachedFieldsModelSerializer(serializers.ModelSerializer):
    def get_fields(self):
        """Build the fields once per class (model introspection is most of a small response's
        cost) and hand each instance its own copies, as DRF does with declared fields."""
        cls = type(self)
        if cls not in _model_fields_cache:
            _model_fields_cache[cls] = super().get_fields()
        return copy.deepcopy(_model_fields_cache[cls])


class CamelModelSerializer(RefuseUnknownFieldsMixin, CamelCaseMixin, CachedFieldsModelSerializer):
    pass


class PlannedRepresentationMixin:
    """The output of DRF's `Serializer.to_representation`, without its per-field, per-row
    machinery: which attribute each readable field reads is worked out once per serializer
    class, then each row is a loop of attribute reads and the fields' own `to_representation`
    (a method field calls its method on this serializer).

    For the hot paths (an agent's inbox: tens of rows of thirty fields each; every answer of a
    checkout), where that machinery, and copying the fields for every serializer instance, was
    most of the time. Only for read-only serializers whose fields read plain attributes,
    callables or the whole instance, and whose fields other than method fields do not read the
    serializer's context; the tests hold each one's output equal to DRF's own.
    """

    def _plan(self) -> list[tuple[str, tuple[str, ...], serializers.Field | None, str]]:
        cls = type(self)
        plan = cls.__dict__.get("_planned")
        if plan is None:
            plan = []
            for field in self.fields.values():  # one copy of the fields, once per class
                if field.write_only:
                    continue
                if isinstance(field, serializers.SerializerMethodField):
                    plan.append((field.field_name, (), None, field.method_name))
                else:
                    plan.append((field.field_name, tuple(field.source_attrs), field, ""))
            cls._planned = plan
        return plan

    def to_representation(self, instance):
        row = {}
        for name, attrs, field, method in self._plan():
            if field is None:
                row[name] = getattr(self, method)(instance)
                continue
            value = instance
            for attr in attrs:
                value = getattr(value, attr)
                if is_simple_callable(value):  # as DRF's get_attribute: a method, called
                    value = value()
            row[name] = None if value is None else field.to_representation(value)
        return row


class CamelSerializer(RefuseUnknownFieldsMixin, CamelCaseMixin, serializers.Serializer):
    pass


class LabelChoiceField(serializers.ChoiceField):
    """An IntegerChoices field that speaks its labels on the wire (`"high"`, not `1`)."""

    def __init__(self, choices_class, **kwargs):
        self.choices_class = choices_class
        self.by_label = {label: value for value, label in choices_class.choices}
        super().__init__(choices=list(self.by_label), **kwargs)

    def to_internal_value(self, data):
        label = super().to_internal_value(data)
        return self.by_label[label]

    def to_representation(self, value):
        return self.choices_class(value).label


class NeutralField(serializers.ChoiceField):
    """A field Paperclip's clients send for a behaviour this server does not have, accepted only
    at the values that ask for nothing (its clients' defaults: `workMode: "standard"`) and then
    dropped; any other value is refused naming the ones accepted, never silently ignored."""

    def __init__(self, values: list, **kwargs):
        super().__init__(choices=values, required=False, write_only=True, **kwargs)
        accepted = " or ".join(json.dumps(value) for value in values)
        self.error_messages["invalid_choice"] = (
            f'"{{input}}" asks for what this server does not do: send {accepted}, or leave it out.'
        )
