"""After the machine: strikes told by DM, a ban told to the admin channel, a moderator's
reject removing a held post, an approve correcting a removal, and appeals through the
review queue with the decision posted back to the author."""

import json
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from accounts.models import Author
from chatbot.models import Appeal, PostedFile
from hashing import services as banks
from review import claims, decisions
from review.models import QueueEntry
from tests.chatbot.conftest import ADMIN_CHANNEL, CHANNEL, MEMBER, sign
from tests.chatbot.fakeslack import TEAM
from uploads.models import MediaItem


def dms(fake, user=MEMBER):
    return [p["text"] for p in fake.posts(user)]


def decide(moderator, item, verdict, reason="", capture=None):
    claims.claim_items(moderator, 10)
    with capture(execute=True):
        decisions.record_decision(moderator, item, verdict, reason)


def test_a_moderator_confirming_a_block_strikes_and_the_author_reads_warning_1_of_2(
    post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    post(venus_bytes)
    item = MediaItem.objects.get()
    decide(moderator, item, "reject", "Explicit nudity", django_capture_on_commit_callbacks)
    item.refresh_from_db()
    assert item.status == "rejected"
    assert len(fake_slack.called("files.delete")) == 1  # removed once, at the flag
    removal, strike = dms(fake_slack)
    assert "A moderator will check it" in removal
    assert "Warning: strike 1 of 2; at 2 the account is banned." in strike
    assert "a moderator's decision (Explicit nudity)" in strike
    assert fake_slack.posts(ADMIN_CHANNEL) == []


def test_known_banned_images_strike_at_once_and_the_second_bans_and_tells_the_admins(
    post, fake_slack, policy_admin, venus_bytes, jpeg
):
    bank = banks.create_bank("known bad")
    banks.add_images(bank, [("cat.jpg", jpeg("chelsea"))])
    post(jpeg("chelsea"))
    post(jpeg("chelsea", quality=80))
    first, second = MediaItem.objects.order_by("pk")
    assert (first.reason, first.status) == ("bank_match", "flagged")
    assert second.status == "flagged"
    texts = dms(fake_slack)
    assert "a known banned image" in texts[0]
    assert "Warning: strike 1 of 2" in texts[0]
    assert "Your account is now banned (2 strikes)." in texts[1]
    (ban,) = fake_slack.posts(ADMIN_CHANNEL)
    assert f"<@{MEMBER}> is now banned" in ban["text"] and "2 strikes" in ban["text"]
    author = Author.objects.get(external_id=f"{TEAM}:{MEMBER}")
    assert author.status == "banned"


def test_a_held_item_stays_until_a_moderator_rejects_it_then_it_is_removed(
    post,
    fake_slack,
    workspace_policy,
    moderator,
    venus_bytes,
    django_capture_on_commit_callbacks,
):
    workspace_policy.categories.filter(name="explicit").update(review_at=0.3, flag_at=1.0)
    event = post(venus_bytes)
    item = MediaItem.objects.get()
    assert item.status == "review" and not fake_slack.called("files.delete")
    assert QueueEntry.objects.get(item=item).purpose == "review"
    decide(moderator, item, "reject", "Explicit nudity", django_capture_on_commit_callbacks)
    assert [c.params["file"] for c in fake_slack.called("files.delete")] == [
        event["files"][0]["id"]
    ]
    (notice,) = [p for p in fake_slack.posts(CHANNEL)]
    assert "a moderator's decision (Explicit nudity)" in notice["text"]
    assert fake_slack.messages[(CHANNEL, event["ts"])]["deleted"]
    (strike,) = dms(fake_slack)
    assert "Warning: strike 1 of 2" in strike


def test_approving_a_removed_item_posts_a_correction_in_its_thread(
    post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    event = post(venus_bytes)
    item = MediaItem.objects.get()
    decide(moderator, item, "approve", "", django_capture_on_commit_callbacks)
    notice, correction = fake_slack.posts(CHANNEL)
    assert correction["thread_ts"] == event["ts"]
    assert correction["text"].startswith("Correction: a moderator looked again")
    assert "approved your file" in dms(fake_slack)[-1]
    assert PostedFile.objects.get().corrected_at is not None
    assert Author.objects.get(external_id=f"{TEAM}:{MEMBER}").strikes == 0


def test_approving_a_passed_item_says_nothing(post, fake_slack, jpeg):
    post(jpeg("coffee"))
    assert fake_slack.posts() == []


def press_appeal(client, item, user=MEMBER, capture=None):
    """The Appeal button, pressed without a trigger: the appeal opens at once."""
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": CHANNEL},
        "actions": [{"action_id": "appeal", "value": str(item.uuid), "type": "button"}],
    }
    return interact(client, payload, capture)


def test_an_appeal_goes_to_the_queue_and_its_decision_is_posted_back_to_the_author(
    client, post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    post(venus_bytes)
    item = MediaItem.objects.get()
    capture = django_capture_on_commit_callbacks
    # Someone else pressing the button is told no, and nothing is queued as an appeal.
    assert press_appeal(client, item, user="U0NOSY", capture=capture).status_code == 200
    assert not Appeal.objects.exists()
    (refusal,) = fake_slack.called("chat.postEphemeral")
    assert refusal.params["user"] == "U0NOSY" and "Only the person" in refusal.params["text"]
    # The author appeals (twice: once is enough).
    assert press_appeal(client, item, capture=capture).status_code == 200
    assert press_appeal(client, item, capture=capture).status_code == 200
    appeal = Appeal.objects.get()
    entry = QueueEntry.objects.get(item=item)
    assert (entry.purpose, entry.priority) == ("appeal", 1)
    assert "is with the moderators" in dms(fake_slack)[-1]
    decide(moderator, item, "approve", "", capture)
    appeal.refresh_from_db()
    assert appeal.status == "granted"
    assert any("was granted" in text for text in dms(fake_slack))
    assert any(p["text"].startswith("Correction") for p in fake_slack.posts(CHANNEL))


def test_an_upheld_appeal_of_a_rejected_item_does_not_strike_twice(
    client, post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    post(venus_bytes)
    item = MediaItem.objects.get()
    decide(moderator, item, "reject", "Explicit nudity", capture)
    press_appeal(client, item, capture=capture)
    assert QueueEntry.objects.get(item=item).purpose == "appeal"
    decide(moderator, item, "reject", "Still explicit", capture)
    assert Appeal.objects.get().status == "upheld"
    assert Author.objects.get(external_id=f"{TEAM}:{MEMBER}").strikes == 1
    assert "turned down" in dms(fake_slack)[-1] and "Still explicit" in dms(fake_slack)[-1]


@pytest.mark.parametrize(
    "headers", [{}, {"X-Slack-Signature": "v0=1", "X-Slack-Request-Timestamp": "x"}]
)
def test_an_unsigned_button_press_is_refused(client, workspace, headers):
    body = urlencode({"payload": json.dumps({"team": {"id": TEAM}})}).encode()
    response = client.post(
        reverse("chatbot:interactions"),
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"


def test_the_queue_card_links_back_to_the_message_and_marks_the_appeal(
    client, post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    event = post(venus_bytes)
    item = MediaItem.objects.get()
    press_appeal(client, item, capture=django_capture_on_commit_callbacks)
    client.force_login(moderator)
    client.post(reverse("review:claim"), {"count": 5})
    html = client.get(reverse("review:queue")).content.decode()
    link = f"https://fake.slack.test/archives/{CHANNEL}/p{event['ts']}"
    assert f'href="{link}"' in html and "where it was posted" in html
    assert 'class="badge appeal"' in html


def test_a_banned_authors_next_file_is_not_taken_and_the_admins_are_told(
    post, fake_slack, venus_bytes, jpeg
):
    Author.objects.create(kind="slack", external_id=f"{TEAM}:{MEMBER}", status="banned", strikes=2)
    post(jpeg("coffee"))
    assert not MediaItem.objects.exists() and fake_slack.downloads
    (told,) = fake_slack.posts(ADMIN_CHANNEL)
    assert f"<@{MEMBER}>, banned here" in told["text"]


def interact(client, payload, capture):
    body = urlencode({"payload": json.dumps({"team": {"id": TEAM}, **payload})}).encode()
    with capture(execute=True):
        return client.post(
            reverse("chatbot:interactions"),
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers=sign(body),
        )


def test_the_appeal_button_asks_why_and_the_moderator_reads_it(
    client, post, fake_slack, moderator, venus_bytes, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    post(venus_bytes)
    item = MediaItem.objects.get()
    press = {
        "type": "block_actions",
        "trigger_id": "1234.5678.abcd",
        "user": {"id": MEMBER},
        "channel": {"id": CHANNEL},
        "actions": [{"action_id": "appeal", "value": str(item.uuid), "type": "button"}],
    }
    assert interact(client, press, capture).status_code == 200
    (modal,) = fake_slack.views
    assert modal["callback_id"] == "appeal" and not Appeal.objects.exists()  # not yet
    assert json.loads(modal["private_metadata"]) == {"item": str(item.uuid), "channel": CHANNEL}
    box = modal["blocks"][0]
    assert (box["block_id"], box["element"]["action_id"]) == ("why", "why")
    words = "It is a museum painting <b>Titian</b>, shared for the art history channel."
    submit = {
        "type": "view_submission",
        "user": {"id": MEMBER},
        "view": {
            "callback_id": "appeal",
            "private_metadata": modal["private_metadata"],
            "state": {"values": {"why": {"why": {"type": "plain_text_input", "value": words}}}},
        },
    }
    assert interact(client, submit, capture).status_code == 200
    appeal = Appeal.objects.get()
    assert appeal.why == words
    assert QueueEntry.objects.get(item=item).purpose == "appeal"
    assert "is with the moderators" in dms(fake_slack)[-1]
    # Someone else's submission with the same metadata opens nothing.
    stranger = {**submit, "user": {"id": "U0NOSY"}}
    interact(client, stranger, capture)
    assert Appeal.objects.count() == 1
    # The moderator reads the author's words on the card (escaped).
    client.force_login(moderator)
    client.post(reverse("review:claim"), {"count": 5})
    html = client.get(reverse("review:queue")).content.decode()
    assert "The author says:" in html
    assert "&lt;b&gt;Titian&lt;/b&gt;" in html and "<b>Titian</b>" not in html


def test_a_late_press_opens_the_appeal_without_words(
    client, post, fake_slack, venus_bytes, django_capture_on_commit_callbacks
):
    post(venus_bytes)
    item = MediaItem.objects.get()
    press = {
        "type": "block_actions",
        "trigger_id": "expired.trigger",  # the task ran after Slack's 3 s
        "user": {"id": MEMBER},
        "channel": {"id": CHANNEL},
        "actions": [{"action_id": "appeal", "value": str(item.uuid), "type": "button"}],
    }
    interact(client, press, django_capture_on_commit_callbacks)
    assert fake_slack.views == []
    assert Appeal.objects.get().why == ""
    assert QueueEntry.objects.get(item=item).purpose == "appeal"


def test_a_hostile_or_broken_appeal_submission_opens_nothing(
    client, post, fake_slack, venus_bytes, django_capture_on_commit_callbacks
):
    post(venus_bytes)
    for view in (
        {"callback_id": "appeal", "private_metadata": "not json"},
        {"callback_id": "appeal", "private_metadata": "[1, 2]"},
        {"callback_id": "appeal", "private_metadata": '{"item": "../../etc"}'},
        {"callback_id": "other", "private_metadata": "{}"},
        "not a view",
    ):
        payload = {"type": "view_submission", "user": {"id": MEMBER}, "view": view}
        answer = interact(client, payload, django_capture_on_commit_callbacks)
        assert answer.status_code == 200
    assert not Appeal.objects.exists()
