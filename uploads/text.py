"""The text kind: a post or comment, with the messages before it (its thread context).

A text item is kept like any other item, as bytes in private storage: a small JSON
document (``envelope``) that starts with ``MAGIC``, so the kind is recognised by content
as every kind is and no image or video is ever taken for text. Page and API build it with
``text_submission`` and hand it to the one intake (``uploads.intake.take``); validation
here is the same for both: UTF-8, no control characters but tab and line breaks, not
empty, at most ``TEXT_MAX_CHARS`` characters (and ``TEXT_MAX_CONTEXT`` earlier messages of
at most as many each), each refusal a sentence a person can act on.

What the analysis reads (``decode``) is a ``TextSubject``: the text and its thread context,
both as sent (offsets into ``text`` are what reviewers see highlighted). The public
rendition is the text alone: the thread context and authors stay private.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings

from .intake import Submission
from .kinds import Accepted, MediaKind, register
from .validation import RefusedUpload

MAGIC = b'{"moderation_text":1,'
MIME = "application/json"


def max_chars() -> int:
    """10,000 characters: a long forum post; Twitter's 280, Reddit comments 10,000."""
    return int(getattr(settings, "TEXT_MAX_CHARS", 10_000))


def max_context() -> int:
    """20 earlier messages: the model reads the last one; reviewers see them all."""
    return int(getattr(settings, "TEXT_MAX_CONTEXT", 20))


@dataclass(frozen=True)
class ContextMessage:
    text: str
    author: str = ""


@dataclass(frozen=True)
class TextSubject:
    """What the text kind's hash algorithms and classifiers read."""

    text: str
    thread_context: tuple[ContextMessage, ...] = field(default_factory=tuple)

    @property
    def previous(self) -> str:
        """The message replied to (the last of the thread context), or ""."""
        return self.thread_context[-1].text if self.thread_context else ""


# Tab, line feed and carriage return are text; every other C0 control, DEL and the C1
# controls are not (a NUL cut the text short in a log; ESC sequences recolour terminals).
ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def _control_at(text: str) -> int | None:
    for index, char in enumerate(text):
        if char in ALLOWED_CONTROLS:
            continue
        if unicodedata.category(char) == "Cc" or "\ud800" <= char <= "\udfff":
            return index
    return None


def check_text(text, *, what: str = "The text") -> str:
    """The text as given, or RefusedUpload saying what to change."""
    if not isinstance(text, str):
        raise RefusedUpload("invalid_text", f"{what} must be a string.")
    at = _control_at(text)
    if at is not None:
        raise RefusedUpload(
            "control_characters",
            f"{what} contains a control character (U+{ord(text[at]):04X} at position {at}); "
            "only tabs and line breaks are allowed.",
        )
    if not text.strip():
        raise RefusedUpload("empty", f"{what} is empty.")
    if len(text) > max_chars():
        raise RefusedUpload(
            "too_long", f"{what} has {len(text)} characters; at most {max_chars()} are taken."
        )
    return text


def check_context(messages) -> tuple[ContextMessage, ...]:
    """Earlier messages as strings or {"text", "author"?} objects, oldest first."""
    if messages is None:
        return ()
    if not isinstance(messages, list | tuple):
        raise RefusedUpload("invalid_text", "thread_context must be a list of messages.")
    if len(messages) > max_context():
        raise RefusedUpload(
            "too_long",
            f"thread_context has {len(messages)} messages; at most {max_context()} are taken "
            "(send the most recent).",
        )
    found = []
    for number, message in enumerate(messages, 1):
        author = ""
        if isinstance(message, dict):
            author = message.get("author") or ""
            if not isinstance(author, str) or len(author) > 255 or _control_at(author) is not None:
                raise RefusedUpload(
                    "invalid_text",
                    f"thread_context message {number}: the author is a name of at most 255 "
                    "characters.",
                )
            message = message.get("text")
        found.append(
            ContextMessage(check_text(message, what=f"thread_context message {number}"), author)
        )
    return tuple(found)


def envelope(text, thread_context=None) -> bytes:
    """The stored bytes of a text item, as sent: the intake validates them (``parse``),
    so page and API get the same refusals in the one answer shape. Escaped to ASCII, so
    that any string (even a lone surrogate, refused then) makes bytes."""
    body = {"text": text, "thread_context": thread_context or []}
    return MAGIC + json.dumps(body, default=str)[1:].encode("ascii")


def text_submission(text, thread_context=None, name: str = "") -> Submission:
    """A Submission for the one intake (``uploads.intake.take``)."""
    return Submission(name=name or "text", data=envelope(text, thread_context))


def parse(data: bytes) -> TextSubject:
    try:
        body = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RefusedUpload("invalid_text", "The text is not valid UTF-8.") from None
    except ValueError:
        raise RefusedUpload("invalid_text", "The text item is not well-formed.") from None
    if not isinstance(body, dict):
        raise RefusedUpload("invalid_text", "The text item is not well-formed.")
    return TextSubject(check_text(body.get("text")), check_context(body.get("thread_context")))


class TextKind(MediaKind):
    name = "text"
    label = "Text"
    formats = "a text post"
    stages = ("fingerprint", "match", "classify")

    def recognises(self, data: bytes) -> bool:
        return data.startswith(MAGIC)

    def validate(self, data: bytes, *, max_bytes: int, max_pixels: int) -> Accepted:
        subject = parse(data)
        return Accepted(
            kind=self.name,
            mime=MIME,
            extension=".json",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            details={
                "characters": len(subject.text),
                "words": len(subject.text.split()),
                "context_messages": len(subject.thread_context),
            },
        )

    def decode(self, data: bytes) -> TextSubject:
        return parse(data)

    def public_rendition(self, data: bytes, mime: str) -> bytes:
        """The text alone: the thread context and its authors are not the poster's to
        publish."""
        return json.dumps({"text": parse(data).text}).encode("ascii")


register(TextKind())
