"""Issues in the admin, one module a subject; importing them registers their admins.

- `issues`: the issue page (transition buttons, thread, documents, attachments, runs), the
  triage list and its force-release action;
- `comments`, `documents`: logs to search and read (written through the API);
- `approvals`: the board's queue of decisions;
- `records`: goals, projects and labels.
"""

from issues.admin import approvals, comments, documents, issues, records

__all__ = ["approvals", "comments", "documents", "issues", "records"]
