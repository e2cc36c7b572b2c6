"""A member's message with files, end to end against the fake Slack (tasks in-process):
every file checked, the explicit one deleted with its message, a threaded notice with the
category and an Appeal button, the author told by DM, everything audited, and retries,
rate limits and failures of the Web API handled."""

import threading
import time

import numpy as np
from PIL import Image, ImageOps

from chatbot import verdicts
from chatbot.handling import take_file
from chatbot.models import Action, Event, Message, PostedFile
from review.models import QueueEntry
from review.policy import policy_for
from tests.chatbot.conftest import ADMIN_CHANNEL, CHANNEL, MEMBER, deliver, envelope
from tests.chatbot.fakeslack import ADMIN_TOKEN, BOT_TOKEN, FakeSlack
from tests.conftest import VENUS, encode
from uploads.models import MediaItem


def methods(fake):
    return [c.method for c in fake.calls]


def test_an_explicit_image_is_removed_with_a_notice_in_its_thread_and_the_author_is_told(
    post, fake_slack, workspace, venus_bytes
):
    event = post(venus_bytes)
    item = MediaItem.objects.get()
    assert (item.source, item.status, item.category) == ("slack", "flagged", "explicit")
    assert item.source_ref == {
        "team": workspace.team_id,
        "channel": CHANNEL,
        "ts": event["ts"],
        "file": event["files"][0]["id"],
        "user": MEMBER,
        "link": f"https://fake.slack.test/archives/{CHANNEL}/p{event['ts']}",
    }
    assert item.author.external_id == f"{workspace.team_id}:{MEMBER}"
    # The file was fetched with the bot token, from the fake's file host.
    assert fake_slack.downloads == [
        {"file": event["files"][0]["id"], "authorization": f"Bearer {BOT_TOKEN}"}
    ]
    assert methods(fake_slack) == [
        "chat.getPermalink",
        "files.delete",
        "chat.postMessage",  # the notice, before its message goes (the thread stays)
        "chat.delete",
        "chat.postMessage",  # the DM
    ]
    delete_file, notice, delete_message, dm = fake_slack.calls[1:]
    assert (
        delete_file.token == ADMIN_TOKEN and delete_file.params["file"] == item.source_ref["file"]
    )
    assert fake_slack.files[item.source_ref["file"]]["deleted"]
    assert delete_message.token == ADMIN_TOKEN
    assert fake_slack.messages[(CHANNEL, event["ts"])]["deleted"]
    assert notice.token == BOT_TOKEN
    assert (notice.params["channel"], notice.params["thread_ts"]) == (CHANNEL, event["ts"])
    assert "removed from this message: Explicit" in notice.params["text"]
    button = notice.params["blocks"][1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("appeal", str(item.uuid))
    assert dm.params["channel"] == MEMBER
    assert "“photo.jpg”" in dm.params["text"] and "Explicit" in dm.params["text"]
    assert "A moderator will check it" in dm.params["text"] and "0 of 2" in dm.params["text"]
    # The queue has it (a model's block, to confirm), with the link back in source_ref.
    assert QueueEntry.objects.get(item=item).purpose == "confirm"
    # Every call audited: who (the machine), what, where, and Slack's answer.
    audit = list(Action.objects.order_by("pk").values_list("method", "token", "ok", "why"))
    assert audit == [
        ("chat.getPermalink", "bot", True, "link"),
        ("files.delete", "admin", True, "flagged"),
        ("chat.postMessage", "bot", True, "flagged"),
        ("chat.delete", "admin", True, "flagged"),
        ("chat.postMessage", "bot", True, "removal"),
    ]
    assert Action.objects.filter(method="files.delete", item=item, workspace=workspace).exists()
    assert Event.objects.get().status == "done"
    assert PostedFile.objects.get().removed_at and Message.objects.get().deleted_at


def test_every_file_of_a_message_is_checked_and_only_the_explicit_one_is_deleted(
    post, fake_slack, jpeg, venus_bytes
):
    event = post(jpeg("coffee"), venus_bytes, jpeg("chelsea"))
    statuses = dict(MediaItem.objects.values_list("source_ref__file", "status"))
    ids = [f["id"] for f in event["files"]]
    assert statuses == {ids[0]: "passed", ids[1]: "flagged", ids[2]: "passed"}
    assert len(fake_slack.downloads) == 3
    assert [c.params["file"] for c in fake_slack.called("files.delete")] == [ids[1]]
    assert len(fake_slack.called("chat.delete")) == 1
    assert not fake_slack.files[ids[0]]["deleted"] and not fake_slack.files[ids[2]]["deleted"]


def test_a_clean_image_is_left_alone(post, fake_slack, jpeg):
    post(jpeg("coffee"))
    assert MediaItem.objects.get().status == "passed"
    assert methods(fake_slack) == ["chat.getPermalink"]


def test_four_deliveries_of_the_event_make_no_duplicate_action(post, fake_slack, venus_bytes):
    post(venus_bytes, deliveries=4)
    assert MediaItem.objects.count() == 1 and len(fake_slack.downloads) == 1
    assert [m for m in methods(fake_slack) if m != "chat.getPermalink"] == [
        "files.delete",
        "chat.postMessage",
        "chat.delete",
        "chat.postMessage",
    ]
    assert Event.objects.get().deliveries == 4


def test_an_item_changed_twice_for_the_same_status_is_acted_on_once(post, fake_slack, venus_bytes):
    post(venus_bytes)
    before = len(fake_slack.calls)
    assert verdicts.act_on_item(MediaItem.objects.get().pk) == []
    assert len(fake_slack.calls) == before


def test_a_slack_connect_stub_is_looked_up_with_files_info_first(post, fake_slack, venus_bytes):
    event = post((venus_bytes, {"connect_stub": True}))
    assert event["files"][0] == {
        "id": event["files"][0]["id"],
        "mode": "file_access",
        "file_access": "check_file_info",
    }
    assert methods(fake_slack)[:2] == ["chat.getPermalink", "files.info"]
    assert MediaItem.objects.get().status == "flagged"
    assert fake_slack.called("files.delete")


def test_a_file_url_off_slacks_hosts_is_never_fetched_and_never_gets_the_token(
    post, fake_slack, venus_bytes
):
    elsewhere = FakeSlack()  # another loopback server: not in SLACK_FILE_HOSTS
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        post((venus_bytes, {"url": f"{elsewhere.origin}/files/F000001/steal"}))
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
    assert elsewhere.downloads == [] and elsewhere.calls == []
    assert fake_slack.downloads == [] and not MediaItem.objects.exists()
    refused = Action.objects.get(method="file download")
    assert not refused.ok and "not a Slack file host" in refused.error
    assert "refused: not a Slack file host" in Event.objects.get().note


def test_files_over_the_cap_are_not_fetched_or_are_cut_off(
    post, fake_slack, workspace, venus_bytes
):
    workspace.max_file_bytes = 20_000  # venus is 35,558 bytes
    workspace.save()
    post(venus_bytes)
    assert fake_slack.downloads == [] and "too_large" in Event.objects.get().note
    # A size that lies: the download stops at the cap.
    Event.objects.all().delete()
    fake_slack.files.clear()
    shared = fake_slack.add_file(venus_bytes, user=MEMBER)
    shared["size"] = 1000
    assert len(fake_slack.downloads) == 0
    message = Message.objects.get()
    assert take_file(workspace, message, shared).startswith("too_large")
    assert len(fake_slack.downloads) == 1 and not MediaItem.objects.exists()


def test_without_an_admin_token_the_bot_cannot_delete_a_members_post_and_tells_the_admins(
    post, fake_slack, workspace, venus_bytes
):
    workspace.set_secret("admin_token", "")
    workspace.save()
    post(venus_bytes)
    assert sorted(Action.objects.filter(ok=False).values_list("method", "error")) == [
        ("chat.delete", "cant_delete_message"),
        ("files.delete", "cant_delete_file"),
    ]
    (admins,) = fake_slack.posts(ADMIN_CHANNEL)
    assert "could not delete" in admins["text"] and "admin user token" in admins["text"]
    assert all(c.token == BOT_TOKEN for c in fake_slack.calls)


def test_a_429_is_waited_out_for_its_retry_after_and_then_the_call_succeeds(
    post, fake_slack, venus_bytes
):
    fake_slack.fail("files.delete", 429)
    post(venus_bytes)
    first, second = fake_slack.called("files.delete")
    assert second.at - first.at >= 1.0  # Retry-After: 1
    assert Action.objects.get(method="files.delete").ok
    assert fake_slack.files[first.params["file"]]["deleted"]


def test_ok_false_and_5xx_answers_are_recorded_as_failures(post, fake_slack, venus_bytes):
    fake_slack.fail("chat.postMessage", "ok_false:channel_not_found")
    fake_slack.fail("chat.delete", 500, 500)  # tried once more, then given up
    post(venus_bytes)
    failed = dict(Action.objects.filter(ok=False).values_list("method", "error"))
    assert failed == {"chat.postMessage": "channel_not_found", "chat.delete": "HTTP 500"}
    assert len(fake_slack.called("chat.delete")) == 2
    assert Action.objects.get(method="chat.delete").status_code == 500
    assert Message.objects.get().deleted_at is None  # not recorded as done
    assert PostedFile.objects.get().notice_ts == ""


def test_the_workspace_policy_judges_its_items(post, workspace, workspace_policy, jpeg):
    post(jpeg("coffee"))
    item = MediaItem.objects.get()
    assert policy_for(item) == workspace_policy and workspace_policy.pk != 1


def test_the_token_is_never_in_the_audit(post, fake_slack, venus_bytes):
    post(venus_bytes)
    text = str(list(Action.objects.values_list("answer", "target", "error")))
    assert BOT_TOKEN not in text and ADMIN_TOKEN not in text and "url_private" not in text


def test_the_bot_answers_within_a_fraction_of_slacks_three_seconds(
    client, fake_slack, workspace, venus_bytes, monkeypatch
):
    from chatbot import tasks

    monkeypatch.setattr(tasks.handle_event, "delay", lambda pk: None)
    event = fake_slack.post_message(
        CHANNEL, MEMBER, [fake_slack.add_file(encode_big(), user=MEMBER)]
    )
    started = time.perf_counter()
    assert deliver(client, envelope(event)).status_code == 200
    assert time.perf_counter() - started < 1.0


def encode_big():
    noise = np.random.default_rng(1).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), "JPEG", quality=95)


def test_two_explicit_files_of_one_message_each_get_a_notice_and_the_message_goes_once(
    post, fake_slack, venus_bytes
):
    mirrored = encode(ImageOps.mirror(Image.open(VENUS)))
    event = post(venus_bytes, mirrored)
    assert MediaItem.objects.filter(status="flagged").count() == 2
    assert len(fake_slack.called("files.delete")) == 2
    assert len(fake_slack.called("chat.delete")) == 1
    notices = [p for p in fake_slack.posts(CHANNEL) if p.get("thread_ts") == event["ts"]]
    assert len(notices) == 2
    assert not Action.objects.filter(ok=False).exists()
