from issues.api.views import CommentViewSet, InboxViewSet, IssueActivityViewSet, IssueViewSet
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
