"""Per-workspace switches: a workspace that checks text has its members' messages judged by
the text classifiers and banks, and a flagged one removed with a notice and a DM, as a
file would be; one that does not check videos leaves video files alone (tasks in-process,
the fake Slack on loopback)."""

import pytest

from chatbot.models import Action, Event, PostedFile
from hashing import services
from hashing.models import Bank
from hashing.text import add_texts
from tests.chatbot.conftest import CHANNEL, MEMBER, deliver, envelope
from tests.videos import DOORKNOB
from uploads.models import MediaItem

SCAM = "Earn money fast from home, visit our site for the details today"


@pytest.fixture
def say(client, fake_slack, workspace, django_capture_on_commit_callbacks):
    """A member posts a message with these words (and files, if any)."""

    def send(text, *files, thread_ts=""):
        shared = [fake_slack.add_file(data, user=MEMBER, **options) for data, options in files]
        event = fake_slack.post_message(CHANNEL, MEMBER, shared, thread_ts=thread_ts, text=text)
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, envelope(event)).status_code == 200
        return event

    return send


def methods(fake):
    return [c.method for c in fake.calls]


def test_text_is_left_alone_unless_the_workspace_checks_it(say, fake_slack, workspace):
    assert not workspace.check_text  # off by default: installing the bot reads files only
    say(SCAM)
    assert Event.objects.get().note == "no files"
    assert not MediaItem.objects.exists() and fake_slack.calls == []


def test_a_known_bad_message_is_removed_with_a_notice_and_the_author_told(
    say, fake_slack, workspace
):
    workspace.check_text = True
    workspace.save()
    add_texts(services.create_bank("known scams", kind=Bank.Kind.BLOCK), [SCAM])
    event = say("EARN M0NEY F4ST fr0m h0me!!! v!sit our s1te for the details today")
    item = MediaItem.objects.get()
    assert (item.kind, item.source, item.status, item.reason) == (
        "text",
        "slack",
        "flagged",
        "bank_match",
    )
    posted = PostedFile.objects.get(item=item)
    assert posted.file_id == PostedFile.TEXT and posted.removed_at is not None
    # No file to delete: the notice, the message itself, the DM.
    assert methods(fake_slack) == [
        "chat.getPermalink",
        "chat.postMessage",
        "chat.delete",
        "chat.postMessage",
    ]
    notice, gone, dm = fake_slack.calls[1:]
    assert notice.params["thread_ts"] == event["ts"]
    assert (
        "A message was removed from this thread: a known banned message" in (notice.params["text"])
    )
    assert fake_slack.messages[(CHANNEL, event["ts"])]["deleted"]
    assert gone.params["ts"] == event["ts"]
    assert dm.params["channel"] == MEMBER
    assert dm.params["text"].startswith(f"Your message in <#{CHANNEL}> was removed")
    assert "strike 1 of 2" in dm.params["text"].lower()
    assert Event.objects.get().note == f"text: item {item.uuid}"
    assert not Action.objects.filter(method="files.delete").exists()


def test_a_harmless_message_passes_and_nothing_is_said(say, fake_slack, workspace):
    workspace.check_text = True
    workspace.save()
    say("have a lovely day, see you at the standup")
    item = MediaItem.objects.get()
    assert (item.kind, item.status) == ("text", "passed")
    assert methods(fake_slack) == ["chat.getPermalink"]


def test_a_workspace_that_does_not_check_videos_leaves_them_alone(say, fake_slack, workspace):
    workspace.check_video = False
    workspace.save()
    clip = DOORKNOB.read_bytes()
    say("look", (clip, {"name": "door.mp4", "mimetype": "video/mp4"}))
    assert fake_slack.downloads == []  # named a video by Slack: not even fetched
    assert "does not check videos" in Event.objects.get().note
    # Named a picture by Slack, it is fetched, recognised by its content and left alone.
    say("look", (clip, {"name": "door.jpg", "mimetype": "image/jpeg"}))
    assert len(fake_slack.downloads) == 1
    assert not MediaItem.objects.exists()
    workspace.check_video = True
    workspace.save()
    say("look", (clip, {"name": "door.mp4", "mimetype": "video/mp4"}))
    assert MediaItem.objects.get().kind == "video"


def test_a_reply_is_judged_with_the_messages_above_it_in_its_thread(say, fake_slack, workspace):
    workspace.check_text = True
    workspace.save()
    insult = fake_slack.post_message(CHANNEL, "U0OTHER", text="shut up you stupid worthless idiot")
    say("you too", thread_ts=insult["ts"])
    reply = MediaItem.objects.get()
    assert reply.status == "review", reply.reason_text  # "you too" returns the insult
    (call,) = fake_slack.called("conversations.replies")
    assert (call.params["channel"], call.params["ts"]) == (CHANNEL, insult["ts"])
    analysis = reply.analyses.get()
    assert analysis.raw["textmodel"]["context"]["insult"] > 0.5
    # The same words outside any thread pass: the context made the difference.
    say("you too")
    alone = MediaItem.objects.exclude(pk=reply.pk).get()
    assert alone.status == "passed"
    assert len(fake_slack.called("conversations.replies")) == 1  # no thread, no call
