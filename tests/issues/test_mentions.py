"""@-mentions in comments: `@Name` (names matched ignoring case, a name with spaces as a whole)
and `[@Name](agent://agt_...)` links. A mention wakes the mentioned agent of the same company,
never the comment's author, once per request and never a paused agent.
"""

from __future__ import annotations

import pytest

from agents.models import Agent, HeartbeatRun, WakeupRequest
from issues.mentions import mentioned_agents
from issues.models import Comment
from paperclip.ids import new_id
from tests import factories
from tests.conftest import client_for
from tests.wire import stored

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def eng(company):
    return factories.AgentFactory(company=company, name="Eng")


@pytest.fixture
def eng_lead(company):
    return factories.AgentFactory(company=company, name="Eng Lead")


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


def names(body: str, company) -> list[str]:
    return [agent.name for agent in mentioned_agents(body, company.pk)]


def link(agent: Agent, text: str | None = None) -> str:
    return f"[@{text or agent.name}](agent://{agent.pk})"


def comment(client, issue_id: str, body: str):
    return client.post(f"/api/issues/{issue_id}/comments", {"body": body}, format="json")


def woken() -> list[tuple[str, str]]:
    """(agent name, reason) of every wake there is, oldest first."""
    rows = WakeupRequest.objects.select_related("agent").order_by("created_at", "id")
    return [(row.agent.name, row.reason) for row in rows]


# -- what counts as a mention ----------------------------------------------------------------------


def test_a_plain_mention_names_the_agent(company, agent):
    assert names("@Builder please look", company) == ["Builder"]


@pytest.mark.parametrize("written", ["@builder", "@BUILDER", "@bUiLdEr"])
def test_names_match_ignoring_case(company, agent, written):
    assert names(f"{written}, can you check?", company) == ["Builder"]


def test_a_name_with_a_space_matches_as_a_whole_and_not_its_prefix(company, eng, eng_lead):
    assert names("@Eng Lead please review", company) == ["Eng Lead"]


def test_a_name_with_a_space_matches_ignoring_case(company, eng, eng_lead):
    assert names("cc @eng lead", company) == ["Eng Lead"]


def test_the_shorter_name_still_matches_on_its_own(company, eng, eng_lead):
    assert names("@Eng fix it, @Eng Lead approve it", company) == ["Eng", "Eng Lead"]


def test_a_prefix_of_a_spaced_name_alone_is_only_the_shorter_agent(company, eng, eng_lead):
    assert names("@Eng Leadership is not a thing", company) == ["Eng"]


@pytest.mark.parametrize(
    "body", ["@Builder.", "(@Builder)", "@Builder: go", "@Builder!", "hey\n@Builder\n"]
)
def test_punctuation_around_a_mention_does_not_hide_it(company, agent, body):
    assert names(body, company) == ["Builder"]


@pytest.mark.parametrize("body", ["@Builders", "@Builder_x", "@Builder-bot", "@Build"])
def test_a_longer_or_shorter_word_is_not_a_mention(company, agent, body):
    assert names(body, company) == []


@pytest.mark.parametrize("body", ["ops@Builder.example.com", "mail bob@builder please"])
def test_an_email_address_is_not_a_mention(company, agent, body):
    assert names(body, company) == []


def test_a_link_names_the_agent_by_id(company, agent):
    assert names(f"over to {link(agent)}", company) == ["Builder"]


def test_a_link_names_the_agent_by_id_whatever_its_text(company, agent):
    assert names(f"over to {link(agent, 'the builder bot')}", company) == ["Builder"]


def test_a_link_to_a_spaced_name_does_not_mention_its_prefix(company, eng, eng_lead):
    assert names(f"{link(eng_lead)} decides", company) == ["Eng Lead"]


def test_a_link_to_an_unknown_agent_names_nobody(company, agent):
    body = f"[@Ghost](agent://{new_id('agt')})"

    assert names(body, company) == []


def test_another_companys_agent_is_never_named(company, agent, other_agent):
    body = f"@Outsider and {link(other_agent)}"

    assert names(body, company) == []


def test_each_agent_is_named_once_in_order_of_first_mention(company, agent, eng, eng_lead):
    body = f"@Eng Lead, then {link(agent)}, then @eng, and @Builder again, @ENG LEAD"

    assert names(body, company) == ["Eng Lead", "Builder", "Eng"]


def test_a_name_with_regex_characters_matches_literally(company):
    factories.AgentFactory(company=company, name="C++ Dev (v2)")
    factories.AgentFactory(company=company, name="C")

    assert names("@C++ Dev (v2) please", company) == ["C++ Dev (v2)"]


def test_a_comment_without_an_at_sign_costs_no_query(company, agent, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert mentioned_agents("Builder, please look", company.pk) == []


# -- who a mention wakes ---------------------------------------------------------------------------


def test_mentioning_an_agent_wakes_it_with_the_comment_id(board, board_user, agent, issue):
    response = comment(board, issue.pk, "@Builder can you take a look?")

    assert response.status_code == 201, response.json()
    [wake] = WakeupRequest.objects.filter(agent=agent)
    assert (wake.reason, wake.source, wake.coalesced) == (
        "issue_comment_mentioned",
        "automation",
        False,
    )
    assert (wake.requested_by_type, wake.requested_by_id) == ("user", board_user.pk)
    assert (wake.run.status, wake.run.issue_id) == ("queued", issue.pk)
    assert wake.run.context == {
        "wakeReason": "issue_comment_mentioned",
        "taskId": issue.pk,
        "issueId": issue.pk,
        "commentId": stored(response.json()["id"], Comment),
    }


def test_a_mention_in_any_case_wakes_the_agent(board, agent, issue):
    response = comment(board, issue.pk, "@builder ping")

    assert response.status_code == 201, response.json()
    assert woken() == [("Builder", "issue_comment_mentioned")]


def test_a_mention_link_wakes_the_linked_agent(board, agent, issue):
    response = comment(board, issue.pk, f"Handing over to {link(agent)}.")

    assert response.status_code == 201, response.json()
    assert woken() == [("Builder", "issue_comment_mentioned")]


def test_mentioning_eng_lead_does_not_wake_eng(board, eng, eng_lead, issue):
    response = comment(board, issue.pk, "@Eng Lead please sign off")

    assert response.status_code == 201, response.json()
    assert woken() == [("Eng Lead", "issue_comment_mentioned")]


def test_mentioning_eng_and_eng_lead_wakes_both(board, eng, eng_lead, issue):
    response = comment(board, issue.pk, "@Eng build it, @Eng Lead sign off")

    assert response.status_code == 201, response.json()
    assert sorted(woken()) == [
        ("Eng", "issue_comment_mentioned"),
        ("Eng Lead", "issue_comment_mentioned"),
    ]


def test_an_agent_mentioning_itself_is_not_woken(company, agent, issue):
    key = factories.AgentApiKeyFactory(agent=agent)

    response = comment(client_for(key.token), issue.pk, f"Note to self @Builder, {link(agent)}")

    assert response.status_code == 201, response.json()
    assert woken() == []


def test_an_agent_mentioning_another_agent_wakes_it(company, agent, eng, issue):
    key = factories.AgentApiKeyFactory(agent=agent)

    response = comment(client_for(key.token), issue.pk, "@Eng your turn")

    assert response.status_code == 201, response.json()
    [wake] = WakeupRequest.objects.filter(agent=eng)
    assert (wake.reason, wake.requested_by_type, wake.requested_by_id) == (
        "issue_comment_mentioned",
        "agent",
        agent.pk,
    )


def test_several_mentions_of_one_agent_wake_it_once(board, agent, issue):
    response = comment(board, issue.pk, f"@Builder, @builder, {link(agent)}!")

    assert response.status_code == 201, response.json()
    assert woken() == [("Builder", "issue_comment_mentioned")]
    assert HeartbeatRun.objects.filter(agent=agent).count() == 1


def test_mentioning_the_assignee_wakes_it_once(board, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = comment(board, issue.pk, "@Builder any update?")

    assert response.status_code == 201, response.json()
    [wake] = WakeupRequest.objects.filter(agent=agent)
    assert wake.run.context["commentId"] == stored(response.json()["id"], Comment)


def test_mentioning_someone_else_wakes_them_and_the_assignee(board, company, agent, eng):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)

    response = comment(board, issue.pk, "@Eng can you help Builder?")

    assert response.status_code == 201, response.json()
    assert sorted(woken()) == [
        ("Builder", "issue_commented"),
        ("Eng", "issue_comment_mentioned"),
    ]


def test_a_mention_in_a_patch_comment_wakes_the_mentioned_agent(board, eng, issue):
    response = board.patch(
        f"/api/issues/{issue.pk}", {"priority": "high", "comment": "@Eng urgent now"}, format="json"
    )

    assert response.status_code == 200, response.json()
    [wake] = WakeupRequest.objects.filter(agent=eng)
    assert wake.reason == "issue_comment_mentioned"
    assert wake.run.context["commentId"] == issue.comments.get().pk


def test_a_mention_on_a_finished_issue_still_wakes_the_mentioned_agent(board, company, eng):
    issue = factories.IssueFactory(company=company, status="done")

    response = comment(board, issue.pk, "@Eng follow up on this in a new issue")

    assert response.status_code == 201, response.json()
    assert woken() == [("Eng", "issue_comment_mentioned")]


def test_mentioning_a_paused_agent_does_not_wake_it(board, company, issue):
    factories.AgentFactory(company=company, name="Sleeper", status=Agent.Status.PAUSED)

    response = comment(board, issue.pk, "@Sleeper wake up")

    assert response.status_code == 201, response.json()
    assert woken() == []


def test_mentioning_another_companys_agent_wakes_nobody(board, issue, other_agent):
    response = comment(board, issue.pk, f"@Outsider and {link(other_agent)}")

    assert response.status_code == 201, response.json()
    assert woken() == []
    assert not HeartbeatRun.objects.exists()
