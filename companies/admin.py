"""The admin: the board's first screen. Writes go through the same services as the API.

The bases here are shared by the agents and issues admins: `CompanyScopedAdmin` (tenancy: staff
who are not superusers see and pick only their companies' rows), `ServiceAdmin` (the change form
saves through a service; a refusal is shown as a message, never a 500), `ServiceFSMAdmin` (its
transition buttons too), `ReadOnlyAdmin` (logs and records) and `ReadOnlyInline` (rows shown on
their parent's page).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from django_fsm.admin import FSMAdminMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from companies import services
from companies.authentication import board_actor
from companies.models import ActivityEvent, BoardToken, Company, Membership, User
from paperclip.board import moment_html, value_link
from paperclip.errors import DomainError, from_fsm
from paperclip.ids import parse_id, ulid_of_uuid

# What a service raises when it refuses a change: shown to the admin user, never a 500.
SERVICE_REFUSALS = (DomainError, TransitionNotAllowed, ConcurrentTransition)


class DefaultedFilter(admin.SimpleListFilter):
    """A list filter with a default choice (`default`) the page opens on, the others a click
    away. The default is the page's, not an action's: rows picked by id are acted on whatever
    the filter (the service says why it refuses one). Subclasses filter in `narrow`."""

    default = ""
    everything = "all"

    def choices(self, changelist):
        current = self.value() or self.default
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        chosen = self.value() or (self.default if request.method == "GET" else self.everything)
        return self.narrow(request, queryset, chosen)

    def narrow(self, request, queryset, chosen: str):
        raise NotImplementedError


def each_row(modeladmin, request, rows, act) -> list:
    """An admin action on the selected rows: `act(actor, row)` for each, each its own service
    call (its checks, its activity row); a refused row is reported with the service's reason and
    the others go on. Answers what `act` answered for the rows it did."""
    actor = board_actor(request.user)
    done = []
    for row in rows:
        try:
            done.append(act(actor, row))
        except SERVICE_REFUSALS as exc:
            modeladmin.message_user(request, f"{row}: {refusal_message(exc)}", messages.ERROR)
    return done


def release_locks(modeladmin, request, issues, release) -> None:
    """The board's force-release wherever it is pressed (the issue list's action, the issue
    page's button, the run monitor's action), so all three say the same: `release`
    (`issues.services.issue_force_release`, handed in as issues build on companies) on each
    issue, its own service call; then one sentence naming each lock released, whose run held it
    and whether that run was live, and one per refusal."""
    actor = board_actor(request.user)
    released, refused = [], False
    for issue in issues:
        try:
            _, previous = release(actor=actor, issue=issue)
        except SERVICE_REFUSALS as exc:
            refused = True
            modeladmin.message_user(
                request,
                f"Could not release the lock of {issue.identifier}: {refusal_message(exc)}",
                messages.ERROR,
            )
            continue
        if previous["runId"]:
            released.append((issue.identifier, previous))
    if not released:
        if not refused:
            modeladmin.message_user(request, "No lock to release: none was held.", messages.INFO)
        return
    agents = apps.get_model("agents", "Agent").objects
    names = dict(
        agents.filter(pk__in={lock["agentId"] for _, lock in released}).values_list("pk", "name")
    )
    held = [
        f"{identifier} (held by {names.get(lock['agentId'], 'an agent')}'s run"
        f" …{lock['runId'][-6:]}, {'live' if lock['runWasLive'] else 'stale'})"
        for identifier, lock in released
    ]
    modeladmin.message_user(
        request,
        f"Released the lock{'s' if len(held) > 1 else ''} of {', '.join(held)}.",
        messages.SUCCESS,
    )


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {text}" for key, value in detail.items() for text in _flatten(value)]
    if isinstance(detail, list):
        return [text for value in detail for text in _flatten(value)]
    return [str(detail)]


def refusal_message(exc: Exception) -> str:
    """What the API's error body says, in one line: the message and its details."""
    if isinstance(exc, TransitionNotAllowed | ConcurrentTransition):
        method = getattr(getattr(exc, "method", None), "__name__", None)
        message = refusal_message(from_fsm(exc))
        return f"Cannot {method.replace('_', ' ')}. {message}" if method else message
    if isinstance(exc, DomainError):
        if exc.code == "validation_error" and isinstance(exc.details, dict):
            # "Validation failed" alone would not say which field the service refused.
            return f"{exc.message}: {' '.join(_flatten(exc.details))}"
        if exc.code == "invalid_transition" and isinstance(exc.details, dict):
            allowed = ", ".join(exc.details.get("allowed") or []) or "none"
            return (
                f"{exc.message}: from {exc.details.get('from')} to {exc.details.get('to')}"
                f" (allowed: {allowed})"
            )
        if isinstance(exc.details, dict) and exc.details.get("checkoutRunId"):
            # Who holds the lock, so the board knows which run to force-release (or wait for).
            run, agent = exc.details["checkoutRunId"], exc.details.get("assigneeAgentId")
            return f"{exc.message} (run {run}, agent {agent})"
        return exc.message
    return str(exc)


def member_company_ids(user: User) -> list[str]:
    return list(user.memberships.values_list("company_id", flat=True))


def in_company(value: models.Model, company_id: str) -> bool:
    if isinstance(value, User):
        return value.memberships.filter(company_id=company_id).exists()
    return getattr(value, "company_id", company_id) == company_id


def with_newlines(text: str) -> str:
    """`\r\n` and `\r` as `\n`: browsers post a textarea's line endings as `\r\n`."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class AdminForm(forms.ModelForm):
    """The base of every admin form: its text inputs (and what they started from) are compared
    and saved with `\n` line endings, so posting a page back untouched changes nothing (no
    version bump, no activity row) and a real edit does not rewrite every line.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        text = [name for name, field in self.fields.items() if isinstance(field, forms.CharField)]
        for name in text:
            if isinstance(self.initial.get(name), str):
                self.initial[name] = with_newlines(self.initial[name])
        if self.is_bound:
            self.data = self.data.copy()
            for key in map(self.add_prefix, text):
                if isinstance(self.data.get(key), str):
                    self.data[key] = with_newlines(self.data[key])


class SameCompanyForm(AdminForm):
    """Every row picked on the form belongs to the edited row's company (as ids do on the API)."""

    def clean(self):
        cleaned = super().clean()
        company = cleaned.get("company")
        company_id = company.pk if company else getattr(self.instance, "company_id", None)
        if company_id is None:
            return cleaned
        for name, value in list(cleaned.items()):
            values = value if isinstance(value, models.QuerySet | list) else [value]
            if any(isinstance(v, models.Model) and not in_company(v, company_id) for v in values):
                self.add_error(name, "Pick one of this company's own.")
        return cleaned


def admin_change_url(model_name: str, pk: str) -> str | None:
    """The admin page of a row named by its model's name (`issue`, `agent`, ...), if any."""
    for model in admin.site._registry:
        if model._meta.model_name == model_name:
            opts = model._meta
            return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])
    return None


class PageHeading:
    """A change page's object as its header names it (unfold's header prints `str(original)`):
    the admin's title for it, where the model's `__str__` is a code (`hire_agent (pending)`) or
    an id. A template shadows `original` with it for the header only."""

    def __init__(self, obj: models.Model, title: str):
        self._meta, self.pk, self.title = obj._meta, obj.pk, title

    def __str__(self) -> str:
        return self.title


def titled(context: dict[str, Any], obj: models.Model | None, title: str | None) -> None:
    """Name the change page of `obj` `title`: in the header and the browser's tab."""
    if obj is not None and title:
        context["subtitle"] = title
        context["page_heading"] = PageHeading(obj, title)


class CompanyScopedAdmin(admin.options.BaseModelAdmin):
    """Tenancy for the admin, in one place: superusers see everything; other staff see, and pick
    in forms, only rows of the companies they have a membership in. A row never changes company.
    """

    company_lookup = "company"  # the path from the admin's model to its Company
    form = SameCompanyForm

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        ids = member_company_ids(request.user)
        return queryset.filter(**{f"{self.company_lookup}__in": ids})

    def get_list_filter(self, request):
        # A plain filter on a relation offers every row of the related model, so staff would read
        # other companies' names in it: offer only the ones this admin's (scoped) rows point at.
        def scoped(entry):
            plain = isinstance(entry, str) and "__" not in entry
            if plain and self.model._meta.get_field(entry).is_relation:
                return (entry, admin.RelatedOnlyFieldListFilter)
            return entry

        return [scoped(entry) for entry in super().get_list_filter(request)]

    def get_object(self, request, object_id, from_field=None):
        # An id in the admin's URL may be written in either wire form (a UUID pasted from a
        # Paperclip client finds the same row); anything else is looked up as Django would.
        prefix = getattr(self.model._meta.pk, "prefix", None)
        if from_field is None and prefix:
            object_id = parse_id(object_id, prefix) or object_id
        return super().get_object(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        # A UUID pasted from a Paperclip client is searched as the text its stored ids end with
        # (`iss_<ulid>`), so it finds the row in any id column searched, and by its own id.
        ulid = ulid_of_uuid(search_term.strip())
        if ulid is None:
            return super().get_search_results(request, queryset, search_term)
        results, may_have_duplicates = super().get_search_results(request, queryset, ulid)
        prefix = getattr(self.model._meta.pk, "prefix", None)
        if prefix:
            results |= queryset.filter(pk=f"{prefix}_{ulid}")
        return results, may_have_duplicates

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and "company" in form.base_fields:
            # Disabled rather than read-only: still validated, so per-company unique names hold.
            form.base_fields["company"].disabled = True
        return form

    def _scoped_choices(self, request, db_field, kwargs: dict[str, Any]) -> dict[str, Any]:
        if request is None or request.user.is_superuser:
            return kwargs
        model = db_field.related_model
        ids = member_company_ids(request.user)
        queryset = kwargs.get("queryset", model._default_manager.all())
        if model is Company:
            kwargs["queryset"] = queryset.filter(pk__in=ids)
        elif model is User:
            kwargs["queryset"] = queryset.filter(memberships__company__in=ids).distinct()
        elif any(field.name == "company" for field in model._meta.fields):
            kwargs["queryset"] = queryset.filter(company__in=ids)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs = self._scoped_choices(request, db_field, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs = self._scoped_choices(request, db_field, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class NoWrites:
    """Neither add, change nor delete from this admin page."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWrites, ModelAdmin):
    """A log or a record the admin may look at but never write."""


class ReadOnlyInline(NoWrites, TabularInline):
    """Rows shown on their parent's page, written only through the API's services."""

    extra = 0


def author_of(row: models.Model) -> Any:
    """Who wrote a comment or a revision: its agent or its user."""
    return row.author_agent or row.author_user or "—"


class ServiceAdmin(ModelAdmin):
    """The change form saves through a service; a refusal rolls the request back and is shown.

    Subclasses implement `create` and `update` (and `delete` where rows may be deleted);
    `changes` holds only what the form changed, so the service's diff (and the activity row)
    names exactly what the board user touched.
    """

    form = AdminForm

    def create(self, request, form) -> models.Model:
        raise NotImplementedError

    def update(self, request, obj, changes: dict[str, Any], form) -> models.Model:
        raise NotImplementedError

    def delete(self, actor, obj) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete(board_actor(request.user), obj)

    def delete_queryset(self, request, queryset):
        # One service call a row (its own checks and activity row), not a bulk SQL DELETE.
        actor = board_actor(request.user)
        for obj in queryset:
            self.delete(actor, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SERVICE_REFUSALS as exc:  # the admin's transaction has rolled back
            self.message_user(request, refusal_message(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            changed = self.model_data(form)
            changes = {name: changed[name] for name in form.changed_data if name in changed}
            saved = self.update(request, obj, changes, form)
        else:
            saved = self.create(request, form)
        # The admin goes on with the form's instance (save_related, the log, the redirect).
        vars(obj).update(vars(saved))

    @staticmethod
    def model_data(form, *exclude: str) -> dict[str, Any]:
        """The form's model fields (not its extra fields) as a service's `data`."""
        names = {field.name for field in form._meta.model._meta.get_fields()} - set(exclude)
        return {name: value for name, value in form.cleaned_data.items() if name in names}


class ServiceFSMAdmin(FSMAdminMixin, ServiceAdmin):
    """FSM transition buttons on the change page, applied by `transition` (a service call)
    instead of calling the model's method and saving, so the API's rules and the activity row
    apply to the admin too.
    """

    def transition(self, request, obj, name: str) -> None:
        raise NotImplementedError

    @staticmethod
    def get_fsm_block_label(fsm_field_name: str) -> str:
        return "Status"  # the buttons' group: the lifecycle, not django-fsm's "Transition (status)"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # FSMAdminMixin looks the object up with the URL's id as is, but the changelist links
        # to `quote(pk)` (`iss_01…` → `iss_5F01…`): unquoted here, as Django's own view does,
        # or a page opened from the list finds no object and shows no buttons.
        obj = self.get_object(request, unquote(object_id))
        context = {
            **(extra_context or {}),
            self.fsm_context_key: self._get_fsm_extra_context(request=request, obj=obj),
        }
        return super(FSMAdminMixin, self).change_view(request, object_id, form_url, context)

    def fsm_transition_view(self, request, object_id, transition_name, **kwargs):
        return super().fsm_transition_view(request, unquote(object_id), transition_name, **kwargs)

    def _transition_names(self) -> set[str]:
        """The transitions a button may name (those marked `admin: False` are not offered)."""
        return {
            t.name
            for field in self.fsm_fields
            for t in self.model._meta.get_field(field).get_all_transitions(self.model)
            if self.is_fsm_transition_visible(t)
        }

    def response_change(self, request, obj):
        name = request.POST.get(self.fsm_post_param)
        if name and name not in self._transition_names():
            self.message_user(request, f"Unknown transition '{name}'.", messages.ERROR)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None) -> bool:
        try:
            self.transition(request, obj, transition_name)
        except SERVICE_REFUSALS as exc:
            self.message_user(request, refusal_message(exc), messages.ERROR)
            return False
        transition = self._get_fsm_transition_by_name(obj=obj, transition_name=transition_name)
        self.message_user(request, f"{self.get_fsm_label(transition)}: done.", messages.SUCCESS)
        return True


class MembershipInline(CompanyScopedAdmin, TabularInline):
    """A user's or a company's seats: the other side of each seat (the company on a user's page,
    the user on a company's) as a link, its role editable. A picker per row would cost a query a
    seat (AutocompleteSelect looks up its selected option), so seats are added in
    `NewMembershipInline`, whose rows search users or companies."""

    model = Membership
    extra = 0
    form = AdminForm  # the membership's own company is the FK being chosen
    readonly_fields = ("seated_user", "seated_company")

    def get_fields(self, request, obj=None):
        seated = "seated_company" if self.parent_model is User else "seated_user"
        return (seated, "role")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="user")
    def seated_user(self, seat: Membership):
        url = reverse("admin:companies_user_change", args=[quote(seat.user_id)])
        return value_link(url, seat.user)

    @admin.display(description="company")
    def seated_company(self, seat: Membership):
        url = reverse("admin:companies_company_change", args=[quote(seat.company_id)])
        return value_link(url, seat.company)


class NewMembershipInline(CompanyScopedAdmin, TabularInline):
    """Seats being added on a user's or a company's page: the user or company searched
    (autocomplete), the role picked. It lists no existing seat (MembershipInline does), so its
    pickers cost nothing per seat held."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user", "company"]
    form = AdminForm
    fields = ("user", "company", "role")
    verbose_name = "membership"
    verbose_name_plural = "add memberships"

    def get_queryset(self, request):
        return super().get_queryset(request).none()


def seats_with_names(kwargs: dict) -> dict:
    """The seat rows of a user's or a company's page with their user and company (each row is
    titled by both): two joins, not two queries a seat."""
    queryset = kwargs.get("queryset")
    if queryset is not None and queryset.model is Membership:
        kwargs["queryset"] = queryset.select_related("user", "company")
    return kwargs


@admin.register(User)
class UserAdmin(DjangoUserAdmin, ModelAdmin):
    """Django's user admin, with our `usr_` id shown and the user's seats inline."""

    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm

    fieldsets = ((None, {"fields": ("id", "username", "password")}), *DjangoUserAdmin.fieldsets[1:])
    readonly_fields = ("id",)
    # The `usr_` id is on the user's page: as a column it pushed the list past a 1280 px screen.
    list_display = ("username", "email", "is_staff", "is_superuser", "last_seen")
    inlines = [MembershipInline, NewMembershipInline]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        return seats_with_names(super().get_formset_kwargs(request, obj, inline, prefix))

    @admin.display(description="last login", ordering="last_login")
    def last_seen(self, user: User) -> str:
        return moment_html(user.last_login)


@admin.register(Company)
class CompanyAdmin(CompanyScopedAdmin, ServiceAdmin):
    company_lookup = "pk"
    form = AdminForm
    list_display = ("name", "issue_prefix", "status", "issue_counter", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "issue_prefix")
    readonly_fields = ("id", "issue_prefix", "issue_counter", "created_at", "updated_at")
    fields = (
        "id",  # a long value: a row of its own, not squeezed beside the prefix's label
        ("issue_prefix", "issue_counter"),
        "name",
        "description",
        "status",
        "budget_monthly_cents",
        ("created_at", "updated_at"),
    )
    add_fields = ("name", "description", "budget_monthly_cents")
    inlines = [MembershipInline, NewMembershipInline]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else super().get_fields(request, obj)

    def get_inlines(self, request, obj):
        # The creating user becomes the owner; further seats are added once the company exists.
        return self.inlines if obj is not None else []

    def get_formset_kwargs(self, request, obj, inline, prefix):
        return seats_with_names(super().get_formset_kwargs(request, obj, inline, prefix))

    def create(self, request, form):
        return services.company_create(actor=board_actor(request.user), **form.cleaned_data)

    def update(self, request, obj, changes, form):
        return services.company_update(
            actor=board_actor(request.user), company=obj, changes=changes
        )


@admin.register(BoardToken)
class BoardTokenAdmin(ReadOnlyAdmin):
    """Tokens are created by `manage.py create_board_token`, which prints the token once; only
    its hash is stored, so nothing here can show it.
    """

    list_display = ("token_prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "token_prefix")
    fields = ("user", "name", "token_prefix", "token_hash", "created_at", "last_used_at")

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)


ISSUE_IDENTIFIER = re.compile(r"[a-z0-9]+-[0-9]+", re.IGNORECASE)


def issue_id_named(identifier: str) -> str | None:
    """The id of the issue an identifier (`DEM-3`, any case) names, if one does.

    Read through the company's issues (its prefix is part of the identifier), so the log's and
    the runs' admins find an issue's rows without importing the issues app.
    """
    identifier = identifier.strip()
    if not ISSUE_IDENTIFIER.fullmatch(identifier):
        return None
    named = Company.objects.filter(issues__identifier__iexact=identifier)
    return named.values_list("issues__id", flat=True).order_by().first()


class IssueIdentifierSearch(ModelAdmin):
    """Searching an issue identifier (`DEM-3`) also finds the rows about that issue: those whose
    `issue_id` is its id (`rows_about_issue` says otherwise where that is not enough)."""

    def rows_about_issue(self, queryset: models.QuerySet, issue_id: str) -> models.QuerySet:
        return queryset.filter(issue_id=issue_id)

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        issue_id = issue_id_named(search_term)
        if issue_id is not None:
            results |= self.rows_about_issue(queryset, issue_id)
        return results, may_have_duplicates


# Codes whose generic reading (below) would say less than these do.
ACTION_LABELS = {
    "issue.review": "Sent to review",
    "issue.handoff": "Handed off",
    "issue.progress": "Progress reported",
    "issue.started": "Work started",
    "agent.wake": "Agent woken",
}


def action_label(code: str) -> str:
    """`issue.comment_added` → `Comment added`, `cost.reported` → `Cost reported`: a verb of
    several words reads on its own; a one-word verb says what it happened to."""
    if code in ACTION_LABELS:
        return ACTION_LABELS[code]
    entity, _, verb = code.partition(".")
    words = verb if "_" in verb else f"{entity} {verb}"
    return words.replace("_", " ").strip().capitalize()


@admin.register(ActivityEvent)
class ActivityEventAdmin(CompanyScopedAdmin, IssueIdentifierSearch, ReadOnlyAdmin):
    """The activity log, readable: who (by name), did what, to what (linked, an issue by its
    identifier), when (relative, exact on hover). Names come in the list's one query."""

    list_display = ("when", "actor", "what", "entity", "company", "seal")
    list_filter = ("action", "entity_type", "actor_type")
    search_fields = ("entity_id", "issue_id")  # and an issue's identifier (`DEM-3`)
    list_select_related = ("company",)

    def get_queryset(self, request):
        def name_of(model: str, field: str, key: str):
            rows = apps.get_model(*model.split(".")).objects.filter(pk=OuterRef(key))
            return Subquery(rows.values(field)[:1])

        return (
            super()
            .get_queryset(request)
            .annotate(
                agent_name=name_of("agents.Agent", "name", "actor_id"),
                user_name=name_of("companies.User", "username", "actor_id"),
                issue_identifier=name_of("issues.Issue", "identifier", "issue_id"),
            )
        )

    @admin.display(description="when", ordering="created_at")
    def when(self, event: ActivityEvent) -> str:
        return moment_html(event.created_at)

    @admin.display(description="action", ordering="action")
    def what(self, event: ActivityEvent) -> str:
        """The action as words, its code on hover (what the API and webhooks call it)."""
        return format_html('<span title="{}">{}</span>', event.action, action_label(event.action))

    @admin.display(description="seal")
    def seal(self, event: ActivityEvent) -> str:
        """Its place in the company's tamper-evident chain (companies.sealing), once sealed."""
        return f"sealed #{event.seal_seq}" if event.seal_seq else "not sealed yet"

    @admin.display(description="actor", ordering="actor_id")
    def actor(self, event: ActivityEvent) -> str:
        if event.actor_type == "agent":
            return event.agent_name or event.actor_id
        if event.actor_type == "user":
            return event.user_name or event.actor_id
        return event.actor_type  # system

    @admin.display(description="about", ordering="entity_type")
    def entity(self, event: ActivityEvent) -> str:
        """The row the change is about, linked to its admin page; on an issue, by identifier."""
        target = admin_change_url(event.entity_type, event.entity_id)
        if event.issue_id and event.entity_type != "issue":
            issue = admin_change_url("issue", event.issue_id)
            return format_html(
                '{} on <a href="{}">{}</a>',
                event.entity_type,
                issue,
                event.issue_identifier or event.issue_id,
            )
        label = event.issue_identifier if event.entity_type == "issue" else event.entity_type
        if target is None:
            return f"{event.entity_type} …{event.entity_id[-6:]}"
        return format_html('<a href="{}">{}</a>', target, label or event.entity_id)
