"""Every write to issues and what hangs off them, one module a subject.

Each service is one transaction: load and lock, check who may act, transition, save, log one
activity row; what leaves the process is queued on commit. The API dialects, the admin and the
management commands call these functions and get the same refusals (domain errors).
"""

from issues.services.approvals import (
    DECISIONS,
    approval_comment_create,
    approval_create,
    approval_decide,
    approval_link_issue,
    approval_resubmit,
)
from issues.services.attachments import attachment_create, attachment_delete
from issues.services.checkout import (
    issue_checkout,
    issue_force_release,
    issue_release,
    release_stale_lock,
)
from issues.services.comments import comment_create
from issues.services.documents import document_delete, document_put
from issues.services.lifecycle import issue_create, issue_delete, issue_update
from issues.services.records import (
    project_pause,
    project_resume,
    record_create,
    record_delete,
    record_update,
)
from issues.services.reopen import issue_reopen
from issues.services.verbs import issue_assign, issue_cancel, issue_reassign, issue_review

__all__ = [
    "DECISIONS",
    "approval_comment_create",
    "approval_create",
    "approval_decide",
    "approval_link_issue",
    "approval_resubmit",
    "attachment_create",
    "attachment_delete",
    "comment_create",
    "document_delete",
    "document_put",
    "issue_assign",
    "issue_cancel",
    "issue_checkout",
    "issue_create",
    "issue_delete",
    "issue_force_release",
    "issue_reassign",
    "issue_release",
    "issue_reopen",
    "issue_review",
    "issue_update",
    "project_pause",
    "project_resume",
    "record_create",
    "record_delete",
    "record_update",
    "release_stale_lock",
]
