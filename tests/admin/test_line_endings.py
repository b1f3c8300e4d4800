"""Browsers post a textarea's line endings as `\r\n`; the admin keeps `\n`, so posting a page
back untouched changes (and logs, and versions) nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from companies.models import ActivityEvent
from issues.models import Issue
from tests import factories
from tests.admin import form_data

DESCRIPTION = "Steps:\n1. open\n2. save\n\nExpected: nothing changes"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def as_a_browser_posts(data: dict) -> dict:
    """Every text value with `\r\n` line endings, as browsers submit textareas."""
    return {
        name: value.replace("\n", "\r\n") if isinstance(value, str) else value
        for name, value in data.items()
    }


def change_url(issue: Issue) -> str:
    return reverse("admin:issues_issue_change", args=[issue.pk])


def test_posting_an_issue_back_untouched_writes_nothing(staff, company):
    issue = factories.IssueFactory(company=company, description=DESCRIPTION)
    url = change_url(issue)

    response = staff.post(url, as_a_browser_posts(form_data(staff.get(url))))

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.description, issue.version) == (DESCRIPTION, 1)
    assert not ActivityEvent.objects.exists()


def test_an_edited_description_is_stored_with_newlines(staff, company):
    issue = factories.IssueFactory(company=company, description=DESCRIPTION)
    url = change_url(issue)
    data = form_data(staff.get(url)) | {"description": "Now:\nfixed", "new_comment": "See\nabove"}

    response = staff.post(url, as_a_browser_posts(data))

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.description, issue.version) == ("Now:\nfixed", 2)
    assert ActivityEvent.objects.get(action="issue.updated").details == {
        "changes": {"description": {"from": DESCRIPTION, "to": "Now:\nfixed"}}
    }
    assert issue.comments.get().body == "See\nabove"


def test_a_description_stored_with_crlf_is_not_rewritten_by_an_untouched_save(staff, company):
    issue = factories.IssueFactory(company=company, description=DESCRIPTION.replace("\n", "\r\n"))
    url = change_url(issue)

    response = staff.post(url, as_a_browser_posts(form_data(staff.get(url))))

    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.version == 1
    assert not ActivityEvent.objects.exists()


def test_posting_an_agent_back_untouched_writes_nothing(staff, agent):
    agent.capabilities = "Reads specs\nWrites code"
    agent.save()
    url = reverse("admin:agents_agent_change", args=[agent.pk])

    response = staff.post(url, as_a_browser_posts(form_data(staff.get(url))))

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.capabilities == "Reads specs\nWrites code"
    assert not ActivityEvent.objects.exists()


def test_posting_a_company_back_untouched_writes_nothing(staff, company):
    company.description = "We build\nrobots"
    company.save()
    url = reverse("admin:companies_company_change", args=[company.pk])

    response = staff.post(url, as_a_browser_posts(form_data(staff.get(url))))

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.description == "We build\nrobots"
    assert not ActivityEvent.objects.exists()
