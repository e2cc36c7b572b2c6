"""Deletes that Slack failed for a reason that may pass are tried again by beat with
backoff (chatbot.removals); refusals that will not pass are not; an approved posting is
left alone (the fake Slack on loopback, tasks in-process)."""

from datetime import timedelta

from django.utils import timezone

from chatbot import removals
from chatbot.models import Action, Message, PostedFile
from review import claims, decisions
from uploads.models import MediaItem


def later(minutes: float):
    return timezone.now() + timedelta(minutes=minutes)


def test_a_delete_that_failed_with_a_5xx_is_retried_with_backoff(post, fake_slack, venus_bytes):
    fake_slack.fail("files.delete", 503, 503)  # the client's own retry fails too
    fake_slack.fail("chat.delete", 500, 500)
    post(venus_bytes)
    posted = PostedFile.objects.get()
    assert posted.removed_at and posted.file_deleted_at is None and posted.removal_attempts == 1
    assert Message.objects.get().deleted_at is None
    file_id = posted.file_id
    assert not fake_slack.files[file_id]["deleted"]
    assert removals.retry_removals() == 0  # not yet: the first wait is a minute
    assert removals.retry_removals(now=later(1.1)) == 1
    posted.refresh_from_db()
    assert posted.file_deleted_at is not None and posted.removal_attempts == 2
    assert fake_slack.files[file_id]["deleted"]
    assert Message.objects.get().deleted_at is not None
    retried = Action.objects.filter(why="flagged (retry)").values_list("method", "ok")
    assert sorted(retried) == [("chat.delete", True), ("files.delete", True)]
    assert removals.retry_removals(now=later(60)) == 0  # nothing left to do
    # The notice was posted once, at the first try.
    notices = [c for c in fake_slack.called("chat.postMessage") if c.params.get("thread_ts")]
    assert len(notices) == 1


def test_each_failed_try_waits_longer_and_the_tries_end(post, fake_slack, venus_bytes):
    fake_slack.fail("files.delete", *([503] * 40))
    post(venus_bytes)
    assert removals.retry_removals(now=later(1.1)) == 1
    assert removals.retry_removals(now=later(3)) == 0  # the second wait is 5 minutes
    posted = PostedFile.objects.get()
    assert posted.removal_attempts == 2
    start = posted.last_removal_at
    for wait in removals.BACKOFF_S[1:]:
        start += timedelta(seconds=wait + 1)
        assert removals.retry_removals(now=start) == 1
    posted.refresh_from_db()
    assert posted.removal_attempts == removals.MAX_ATTEMPTS == 7
    assert removals.retry_removals(now=start + timedelta(days=1)) == 0


def test_a_refusal_that_will_not_pass_is_not_retried(post, fake_slack, venus_bytes):
    fake_slack.fail("files.delete", "ok_false:cant_delete_file")
    post(venus_bytes)
    posted = PostedFile.objects.get()
    assert posted.file_deleted_at is None
    fake_slack.fail("files.delete", "ok_false:cant_delete_file")
    assert removals.retry_removals(now=later(1.1)) == 1
    posted.refresh_from_db()
    assert posted.removal_attempts == removals.MAX_ATTEMPTS  # given up: the admins were told
    assert removals.retry_removals(now=later(600)) == 0


def test_an_approved_posting_is_not_deleted_later(
    post, fake_slack, venus_bytes, moderator, django_capture_on_commit_callbacks
):
    fake_slack.fail("files.delete", 503, 503)
    post(venus_bytes)
    item = MediaItem.objects.get()
    claims.claim_items(moderator, 10)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.record_decision(moderator, item, "approve", "a painting")
    assert MediaItem.objects.get().status == MediaItem.Status.APPROVED
    calls = len(fake_slack.called("files.delete"))
    assert removals.retry_removals(now=later(2)) == 0
    assert len(fake_slack.called("files.delete")) == calls
    assert not fake_slack.files[PostedFile.objects.get().file_id]["deleted"]


def test_two_sweeps_at_once_try_a_posting_once(post, fake_slack, venus_bytes):
    fake_slack.fail("files.delete", 503, 503)
    post(venus_bytes)
    posted = PostedFile.objects.get()
    # A second sweep read the same posting and claims after the first: its claim fails.
    assert removals.retry_removals(now=later(1.1)) == 1
    stale_claim = PostedFile.objects.filter(pk=posted.pk, removal_attempts=1).update(
        removal_attempts=3
    )
    assert stale_claim == 0
