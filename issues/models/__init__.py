"""Issues (the unit of work) and what hangs off them, one module a subject.

Django loads an app's models from `issues.models`; every model is imported here, and the rest of
the code may keep importing them from `issues.models`.
"""

from issues.models.approvals import Approval, ApprovalComment
from issues.models.attachments import Attachment
from issues.models.comments import Comment
from issues.models.costs import CostEvent
from issues.models.documents import (
    DOCUMENT_BODY_MAX,
    DOCUMENT_KEY,
    DOCUMENT_KEY_MAX,
    Document,
    DocumentRevision,
)
from issues.models.events import Event
from issues.models.issue import (
    INITIAL_STATUSES,
    LIST_PREFETCHES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    TRANSITION_TO,
    Issue,
    IssueQuerySet,
    Priority,
    Status,
    StatusReason,
    patchable_targets,
)
from issues.models.records import Goal, Label, Project

__all__ = [
    "DOCUMENT_BODY_MAX",
    "DOCUMENT_KEY",
    "DOCUMENT_KEY_MAX",
    "INITIAL_STATUSES",
    "LIST_PREFETCHES",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITION_TO",
    "Approval",
    "ApprovalComment",
    "Attachment",
    "Comment",
    "CostEvent",
    "Document",
    "DocumentRevision",
    "Event",
    "Goal",
    "Issue",
    "IssueQuerySet",
    "Label",
    "Priority",
    "Project",
    "Status",
    "StatusReason",
    "patchable_targets",
]
