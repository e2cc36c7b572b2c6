"""Text items through the one intake: validation, storage, the analysis, the public copy."""

import json

import pytest

from uploads import intake, services, text
from uploads.kinds import get_kind, kind_for
from uploads.models import MediaItem
from uploads.validation import RefusedUpload


@pytest.fixture
def take(django_capture_on_commit_callbacks, uploader):
    def send(body: str, context=None) -> MediaItem:
        with django_capture_on_commit_callbacks(execute=True):
            result = intake.take(
                [text.text_submission(body, context)], source="web", uploader=uploader
            )
        (item,) = result.accepted
        item.refresh_from_db()
        return item

    return send


def test_a_text_is_its_own_kind_recognised_by_content():
    data = text.envelope("hello there", ["hi"])
    assert kind_for(data).name == "text"
    assert kind_for(b"GIF89a" + b"\0" * 20).name != "text"  # an image is never text
    subject = get_kind("text").decode(data)
    assert subject.text == "hello there"
    assert subject.previous == "hi"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("", "empty", "empty"),
        ("   \n\t ", "empty", "empty"),
        ("bad\x00byte", "control_characters", "U+0000 at position 3"),
        ("esc \x1b[31mred", "control_characters", "U+001B"),
        ("c1 \x85 control", "control_characters", "U+0085"),
        ("x" * 10_001, "too_long", "at most 10000"),
    ],
)
def test_bad_text_is_refused_with_a_sentence(body, code, words):
    with pytest.raises(RefusedUpload) as refused:
        text.parse(text.envelope(body))
    assert refused.value.code == code
    assert words in refused.value.message


def test_tabs_and_line_breaks_are_text():
    assert text.check_text("line one\n\tline two\r\n") == "line one\n\tline two\r\n"


def test_the_thread_context_is_checked_message_by_message():
    with pytest.raises(RefusedUpload, match="thread_context message 2 is empty"):
        text.parse(text.envelope("reply", ["first", ""]))
    with pytest.raises(RefusedUpload, match="at most 20"):
        text.parse(text.envelope("reply", ["m"] * 21))
    with pytest.raises(RefusedUpload, match="list of messages"):
        text.parse(text.envelope("reply", "not a list"))
    body = text.envelope("reply", [{"text": "first", "author": "ann"}, "second"])
    assert [m.author for m in text.parse(body).thread_context] == ["ann", ""]


def test_stored_bytes_that_are_not_utf8_are_refused():
    with pytest.raises(RefusedUpload, match="not valid UTF-8"):
        get_kind("text").validate(text.MAGIC + b'"text":"\xff"}', max_bytes=1000, max_pixels=1)


@pytest.mark.django_db
def test_a_comment_is_taken_analysed_and_decided(take):
    item = take("What a lovely photo of your garden, thanks for sharing!")
    assert (item.kind, item.mime) == ("text", "application/json")
    assert item.details == {"characters": 55, "words": 10, "context_messages": 0}
    assert item.status == MediaItem.Status.PASSED, item.reason_text
    analysis = item.analyses.get()
    assert set(analysis.raw) == {"textmodel"}  # NudeNet takes images only
    assert {"text_exact", "text_minhash"} <= set(analysis.hashes)
    assert set(analysis.scores) == {
        "hate",
        "harassment",
        "violence",
        "self_harm",
        "sexual",
        "spam",
    }


@pytest.mark.django_db
def test_a_threat_is_flagged_and_its_public_copy_is_the_text_alone(take):
    item = take("I am going to find you and kill you, you are dead", ["you owe me money"])
    assert item.status in (MediaItem.Status.FLAGGED, MediaItem.Status.REVIEW)
    assert item.reason.startswith("violence_"), item.reason_text
    public = services.public_file(item)
    assert json.loads(public.read()) == {
        "text": "I am going to find you and kill you, you are dead"
    }


@pytest.mark.django_db
def test_an_empty_text_is_refused_by_the_intake_as_bad_input(uploader):
    result = intake.take(
        [intake.Submission(name="text", data=text.MAGIC + b'"text":"   "}')],
        source="web",
        uploader=uploader,
    )
    assert result.status == 400
    assert [(r.code, r.detail) for r in result.refused] == [("empty", "The text is empty.")]
    lone = intake.take([text.text_submission("half \ud800 pair")], source="web", uploader=uploader)
    assert [r.code for r in lone.refused] == ["control_characters"]
    assert not MediaItem.objects.exists()


@pytest.mark.django_db
def test_the_upload_page_takes_a_text_from_its_text_box(client, uploader):
    client.force_login(uploader)
    page = client.get("/uploads/")
    assert b'<textarea id="text" name="text"' in page.content
    answer = client.post(
        "/uploads/submit/", {"text": "Nice to meet you all"}, HTTP_ACCEPT="application/json"
    )
    assert answer.status_code == 200, answer.content
    (item,) = answer.json()["items"]
    assert (item["kind"], item["name"]) == ("text", "text")
    refused = client.post("/uploads/submit/", {"text": "\x07"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "control_characters"
