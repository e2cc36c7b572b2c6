"""What a reviewer sees of a text item: the thread above it, the text with the matched
term spans highlighted, and the scores per category (from the latest analysis).

The spans are offsets into the original text (review.terms), so the highlight is on what
the author wrote ("f4gg0t"), not on the normalised form. Everything is plain values for
the template, which escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from uploads.kinds import get_kind
from uploads.models import MediaItem

from .models import Analysis


@dataclass(frozen=True)
class Segment:
    text: str
    match: dict | None = None  # the term match, for the highlight's title

    @property
    def title(self) -> str:
        if not self.match:
            return ""
        m = self.match
        how = "quoted, " if m.get("quoted") else ""
        if m.get("allowed"):
            how += "inside an allow term, "
        elif m.get("countered"):
            how += "countered by an allow term, "
        return f"{m['kind']} term “{m['term']}” ({how}{m['category']})"

    @property
    def css(self) -> str:
        if not self.match:
            return ""
        if self.match["kind"] == "allow":
            return "term-allow"
        return "term-block" if self.match.get("score") == 1.0 else "term-soft"


@dataclass(frozen=True)
class TextEvidence:
    segments: list[Segment]
    thread: list[dict] = field(default_factory=list)
    scores: list[tuple[str, float]] = field(default_factory=list)
    context_used: bool = False
    unreadable: bool = False


def segments(text: str, matches: list[dict]) -> list[Segment]:
    """The text cut at the matches' spans; where spans overlap, the earlier one wins."""
    out, at = [], 0
    for m in sorted(matches, key=lambda m: (m["start"], -m["end"])):
        start, end = max(m["start"], at), m["end"]
        if end <= start or end > len(text):
            continue
        if start > at:
            out.append(Segment(text[at:start]))
        out.append(Segment(text[start:end], m))
        at = end
    if at < len(text):
        out.append(Segment(text[at:]))
    return out


def text_evidence(item: MediaItem, analysis: Analysis | None = None) -> TextEvidence:
    try:
        with item.file.open("rb") as fh:
            subject = get_kind("text").decode(fh.read())
    except Exception:  # noqa: BLE001 - storage down: the page says so, never a 500
        return TextEvidence([], unreadable=True)
    analysis = analysis or Analysis.objects.filter(item=item).first()
    raw = ((analysis.raw if analysis else None) or {}).get("textmodel") or {}
    scores = sorted((item.scores or {}).items(), key=lambda kv: -kv[1])
    return TextEvidence(
        segments(subject.text, raw.get("terms") or []),
        [{"text": m.text, "author": m.author} for m in subject.thread_context],
        scores,
        context_used=bool(raw.get("context")),
    )
