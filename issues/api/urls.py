from issues.api.approvals import ApprovalViewSet
from issues.api.attachments import AttachmentViewSet
from issues.api.comments import CommentViewSet
from issues.api.costs import CostEventViewSet, CostRollupViewSet
from issues.api.documents import DocumentViewSet
from issues.api.inbox import InboxViewSet
from issues.api.issues import IssueActivityViewSet, IssueViewSet
from issues.api.records import GoalViewSet, LabelViewSet, ProjectViewSet
from paperclip.api.viewsets import ID, route

urlpatterns = [
    route(
        rf"companies/(?P<company_pk>{ID})/issues",
        IssueViewSet.as_view({"get": "list", "post": "create"}),
        name="company-issues",
    ),
    route(
        rf"issues/(?P<pk>{ID})",
        IssueViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="issue",
    ),
    route(
        rf"issues/(?P<pk>{ID})/reopen",
        IssueViewSet.as_view({"post": "reopen"}),
        name="issue-reopen",
    ),
    route(
        rf"issues/(?P<issue_pk>{ID})/comments",
        CommentViewSet.as_view({"get": "list", "post": "create"}),
        name="issue-comments",
    ),
    route(
        rf"issues/(?P<issue_pk>{ID})/comments/(?P<pk>{ID})",
        CommentViewSet.as_view({"get": "retrieve"}),
        name="issue-comment",
    ),
    route(
        rf"issues/(?P<issue_pk>{ID})/activity",
        IssueActivityViewSet.as_view({"get": "list"}),
        name="issue-activity",
    ),
]

ISSUE_VERBS = {
    "checkout": ("post", "checkout"),
    "release": ("post", "release"),
    "admin/force-release": ("post", "force_release"),
    "runs": ("get", "runs"),
    "heartbeat-context": ("get", "heartbeat_context"),
}

urlpatterns += [
    route("agents/me/inbox-lite", InboxViewSet.as_view({"get": "inbox_lite"}), name="inbox-lite"),
    *[
        route(rf"issues/(?P<pk>{ID})/{path}", IssueViewSet.as_view({method: verb}))
        for path, (method, verb) in ISSUE_VERBS.items()
    ],
]

DOCUMENT = rf"issues/(?P<issue_pk>{ID})/documents/(?P<key>[^/]+)"
APPROVAL_VERBS = ("approve", "reject", "request-revision", "resubmit")
RECORDS = {"goals": GoalViewSet, "projects": ProjectViewSet, "labels": LabelViewSet}

urlpatterns += [
    # Documents
    route(
        rf"issues/(?P<issue_pk>{ID})/documents",
        DocumentViewSet.as_view({"get": "list"}),
        name="issue-documents",
    ),
    route(
        DOCUMENT,
        DocumentViewSet.as_view({"get": "retrieve", "put": "upsert", "delete": "destroy"}),
        name="issue-document",
    ),
    route(rf"{DOCUMENT}/revisions", DocumentViewSet.as_view({"get": "revisions"})),
    # Attachments
    route(
        rf"companies/(?P<company_pk>{ID})/issues/(?P<issue_pk>{ID})/attachments",
        AttachmentViewSet.as_view({"post": "create"}),
        name="issue-attachment-upload",
    ),
    route(
        rf"issues/(?P<issue_pk>{ID})/attachments",
        AttachmentViewSet.as_view({"get": "list"}),
        name="issue-attachments",
    ),
    route(rf"attachments/(?P<pk>{ID})", AttachmentViewSet.as_view({"delete": "destroy"})),
    route(rf"attachments/(?P<pk>{ID})/content", AttachmentViewSet.as_view({"get": "content"})),
    # Approvals
    route(
        rf"companies/(?P<company_pk>{ID})/approvals",
        ApprovalViewSet.as_view({"get": "list", "post": "create"}),
        name="company-approvals",
    ),
    route(rf"approvals/(?P<pk>{ID})", ApprovalViewSet.as_view({"get": "retrieve"})),
    # These three lists are short and whole: no cursor, so none is offered in the schema.
    route(
        rf"approvals/(?P<pk>{ID})/issues",
        ApprovalViewSet.as_view({"get": "issues"}, pagination_class=None),
    ),
    route(
        rf"approvals/(?P<pk>{ID})/comments",
        ApprovalViewSet.as_view({"get": "comments", "post": "add_comment"}, pagination_class=None),
    ),
    *[
        route(
            rf"approvals/(?P<pk>{ID})/{verb}",
            ApprovalViewSet.as_view({"post": verb.replace("-", "_")}),
        )
        for verb in APPROVAL_VERBS
    ],
    route(
        rf"issues/(?P<issue_pk>{ID})/approvals",
        ApprovalViewSet.as_view({"get": "for_issue", "post": "link_issue"}, pagination_class=None),
    ),
    # Goals, projects, labels
    *[
        route(
            rf"companies/(?P<company_pk>{ID})/{plural}",
            viewset.as_view({"get": "list", "post": "create"}),
        )
        for plural, viewset in RECORDS.items()
    ],
    *[
        route(
            rf"{plural}/(?P<pk>{ID})",
            viewset.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        )
        for plural, viewset in RECORDS.items()
    ],
    route(rf"projects/(?P<pk>{ID})/pause", ProjectViewSet.as_view({"post": "pause"})),
    route(rf"projects/(?P<pk>{ID})/resume", ProjectViewSet.as_view({"post": "resume"})),
]

# Costs (DESIGN §10)
COST_ROLLUPS = {
    "summary": "summary",
    "by-agent": "by_agent",
    "by-project": "by_project",
    "by-issue": "by_issue",
    "by-model": "by_model",
}

urlpatterns += [
    route(
        rf"companies/(?P<company_pk>{ID})/cost-events",
        CostEventViewSet.as_view({"get": "list", "post": "create"}),
        name="company-cost-events",
    ),
    *[
        route(
            rf"companies/(?P<company_pk>{ID})/costs/{path}",
            CostRollupViewSet.as_view({"get": verb}),
            name=f"company-costs-{path}",
        )
        for path, verb in COST_ROLLUPS.items()
    ],
]
