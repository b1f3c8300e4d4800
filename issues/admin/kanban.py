"""The kanban (DESIGN §11): a company's issues in one column per status. Moving a card runs the
transition service the issue page's buttons and the API's PATCH run (`issue_update` with a
status); a refused move answers what /api answers (its error renderer: `{"error", "code",
"details"}`, details from, to and allowed) and the card goes back.

Two views wired by `IssueAdmin.get_urls`: the board (`admin:issues_issue_kanban`) and the move
(`admin:issues_issue_kanban_move`, a CSRF-protected POST answering JSON to the page's script, a
redirect with a message to the no-script form each card carries).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from companies.admin import SERVICE_REFUSALS, refusal_message
from companies.authentication import board_actor
from companies.board_dashboard import board_companies, picked_company
from issues import services
from issues.models import TERMINAL_STATUSES, Issue, Status
from paperclip.api.errors import api_error_response

COLUMNS = (
    Status.BACKLOG,
    Status.TODO,
    Status.IN_PROGRESS,
    Status.IN_REVIEW,
    Status.BLOCKED,
    Status.DONE,
    Status.CANCELLED,
    Status.FAILED,
)
# Finished columns show the most recently closed cards only; the list has the rest.
FINISHED_CARDS = 30


def board_view(model_admin, request):
    """The company's board: open columns whole, finished ones their newest cards."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    companies = board_companies(request.user)
    if not companies:
        raise Http404("No company")
    # A company the user may not see (or none) opens the first one's board.
    company = picked_company(companies, request.GET.get("company")) or companies[0]
    issues = (
        model_admin.get_queryset(request)
        .for_company(company.pk)
        .select_related("assignee_agent", "assignee_user")
        .order_by("priority", "-updated_at")
    )
    cards: dict[str, list[Issue]] = {status: [] for status in COLUMNS}
    for issue in issues.exclude(status__in=TERMINAL_STATUSES):
        cards[issue.status].append(issue)
    finished = issues.filter(status__in=TERMINAL_STATUSES)
    for issue in finished.order_by("-updated_at")[: FINISHED_CARDS * 3]:
        if len(cards[issue.status]) < FINISHED_CARDS:
            cards[issue.status].append(issue)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Kanban · {company.name}",
        # No `opts`: the theme's header would read "Issues > Issues"; it shows `content_title`.
        "content_title": f"Kanban · {company.name}",
        "issue_opts": model_admin.model._meta,
        "company": company,
        "companies": companies,
        "columns": [
            {"status": status, "label": status.label, "cards": cards[status]} for status in COLUMNS
        ],
        "statuses": [(status.value, status.label) for status in COLUMNS],
        "move_url": reverse("admin:issues_issue_kanban_move"),
        "can_move": model_admin.has_change_permission(request),
    }
    return TemplateResponse(request, "admin/issues/issue/kanban.html", context)


def move_view(model_admin, request):
    """Move one card: `issue` (its id) to `status`, through `issue_update`. JSON for the
    script (200 with the issue's new status; a refusal, or an issue the user cannot see, as
    /api's error body and status); a redirect back to the board with a message for the
    no-script form."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    wants_json = "application/json" in request.headers.get("Accept", "")
    issue = model_admin.get_queryset(request).filter(pk=request.POST.get("issue", "")).first()
    if issue is None:
        if wants_json:
            return api_error_response(request, Http404("No such issue"))
        raise Http404("No such issue")
    if not model_admin.has_change_permission(request, issue):
        raise PermissionDenied
    target = request.POST.get("status", "")
    back = f"{reverse('admin:issues_issue_kanban')}?company={issue.company_id}"
    try:
        issue = services.issue_update(
            actor=board_actor(request.user), issue=issue, changes={"status": target}
        )
    except SERVICE_REFUSALS as exc:
        if wants_json:  # as /api answers the same refusal: {"error", "code", "details"}
            return api_error_response(request, exc)
        model_admin.message_user(
            request, f"{issue.identifier}: {refusal_message(exc)}", messages.ERROR
        )
        return HttpResponseRedirect(back)
    if not wants_json:
        model_admin.message_user(
            request, f"{issue.identifier} moved to {issue.get_status_display()}.", messages.SUCCESS
        )
        return HttpResponseRedirect(back)
    return JsonResponse({"ok": True, "id": issue.pk, "status": issue.status})
