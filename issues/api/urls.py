from issues.api.views import CommentViewSet, IssueActivityViewSet, IssueViewSet
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
