"""The queue's health, read from the rows: what the dashboard shows and /metrics exports.

Every figure is one aggregate query over indexed columns (queue entries, decisions by
`decided_at`, analyses by `created_at`, strikes by `created_at`), so a dashboard view or a
scrape costs a handful of queries whatever the traffic. Ranges are the last hour, day or
week (`RANGES`), ending now.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import Author, Strike
from uploads.models import MediaItem

from .models import Analysis, Decision, Policy, QueueEntry

RANGES = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
DEFAULT_RANGE = "day"


@dataclass(frozen=True)
class Rate:
    """`part` of `whole` (None when nothing was counted)."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None


def since(range_name: str, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - RANGES[range_name]


def pending_by_kind_and_reason() -> list[dict]:
    """Unclaimed queue entries by item kind, the machine reason and purpose, largest first."""
    rows = (
        QueueEntry.objects.filter(claimed_by__isnull=True)
        .values(kind=F("item__kind"), reason=F("item__reason"), purpose_=F("purpose"))
        .annotate(n=Count("pk"))
        .order_by("-n", "kind", "reason")
    )
    return [
        {"kind": r["kind"], "reason": r["reason"] or "", "purpose": r["purpose_"], "n": r["n"]}
        for r in rows
    ]


def queue_totals(now: datetime | None = None) -> dict:
    """Pending, claimed, and the age in seconds of the oldest pending item (None: empty)."""
    now = now or timezone.now()
    row = QueueEntry.objects.aggregate(
        pending=Count("pk", filter=Q(claimed_by__isnull=True)),
        claimed=Count("pk", filter=Q(claimed_by__isnull=False)),
        oldest=Min("item_created_at", filter=Q(claimed_by__isnull=True)),
    )
    oldest = row["oldest"]
    return {
        "pending": row["pending"],
        "claimed": row["claimed"],
        "oldest_pending_age_s": max(0.0, (now - oldest).total_seconds()) if oldest else None,
    }


def _first_decisions(start: datetime):
    return Decision.objects.filter(decided_at__gte=start, is_override=False)


def decisions_per_hour(start: datetime, now: datetime | None = None) -> list[dict]:
    """Decisions (first ones and reversals) per clock hour from `start`, empty hours as 0."""
    now = now or timezone.now()
    counts = {
        r["hour"]: r["n"]
        for r in Decision.objects.filter(decided_at__gte=start)
        .annotate(hour=TruncHour("decided_at"))
        .values("hour")
        .annotate(n=Count("pk"))
        .order_by()
    }
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour <= now:
        out.append({"hour": hour, "n": counts.get(hour, 0)})
        hour += timedelta(hours=1)
    return out


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(len(ordered), rank) - 1]


# Time to decide is a percentile over the range's decisions; past this many the newest
# are used (a week of a busy queue would otherwise load every row into the page).
TIME_TO_DECIDE_SAMPLE = 20_000


def time_to_decide(start: datetime) -> dict:
    """Seconds from claim to decision of the range's first decisions: p50 and p90."""
    seconds = list(
        _first_decisions(start)
        .exclude(seconds_to_decide__isnull=True)
        .order_by("-decided_at")
        .values_list("seconds_to_decide", flat=True)[:TIME_TO_DECIDE_SAMPLE]
    )
    return {"n": len(seconds), "p50": percentile(seconds, 50), "p90": percentile(seconds, 90)}


def outcomes_by_reason(start: datetime | None = None) -> list[dict]:
    """Automatic outcomes (pass, review, flagged) by machine reason, largest first."""
    rows = Analysis.objects.all()
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    rows = rows.values("outcome", "reason").annotate(n=Count("pk")).order_by("-n", "reason")
    return list(rows)


def flag_overturn_rate(start: datetime) -> Rate:
    """Of the automatically flagged items a person decided in the range (first decisions),
    how many they restored (approved)."""
    row = (
        _first_decisions(start)
        .filter(previous_status=MediaItem.Status.FLAGGED)
        .aggregate(whole=Count("pk"), part=Count("pk", filter=Q(decision=Decision.Verdict.APPROVE)))
    )
    return Rate(row["part"], row["whole"])


def decision_overturn_rate(start: datetime) -> Rate:
    """Of the moderators' first decisions made in the range, how many were since reversed
    (a later record supersedes them)."""
    row = _first_decisions(start).aggregate(
        whole=Count("pk", distinct=True),
        part=Count("pk", filter=Q(superseded_by__isnull=False), distinct=True),
    )
    return Rate(row["part"], row["whole"])


def confirmation_rates(start: datetime) -> list[dict]:
    """Per category (rows of the policy), of the model-only blocks a person decided in the
    range, how many they confirmed: review.decisions.confirmation_rate over a range."""
    counts = {
        (r["item__category"], r["item__kind"]): r
        for r in _first_decisions(start)
        .filter(previous_status=MediaItem.Status.FLAGGED)
        .values("item__category", "item__kind")
        .annotate(decided=Count("pk"), confirmed=Count("pk", filter=Q(decision="reject")))
        .order_by()
    }
    out = []
    for category in Policy.current().categories.order_by("media_kind", "-rank", "name"):
        row = counts.get((category.name, category.media_kind), {})
        out.append(
            {
                "category": category.name,
                "label": category.label,
                "kind": category.media_kind,
                "rate": Rate(row.get("confirmed", 0), row.get("decided", 0)),
            }
        )
    return out


def strikes_and_bans(start: datetime) -> dict:
    return {
        "strikes": Strike.objects.filter(created_at__gte=start).count(),
        "bans": Author.objects.filter(banned_at__gte=start).count(),
        "banned_now": Author.objects.filter(status=Author.Status.BANNED).count(),
    }


def moderator_throughput(start: datetime) -> list[dict]:
    """Decisions per moderator in the range (first ones and reversals), busiest first."""
    rows = (
        Decision.objects.filter(decided_at__gte=start, moderator__isnull=False)
        .values("moderator__username")
        .annotate(
            n=Count("pk"),
            rejected=Count("pk", filter=Q(decision=Decision.Verdict.REJECT)),
            reversals=Count("pk", filter=Q(is_override=True)),
        )
        .order_by("-n", "moderator__username")
    )
    return [
        {
            "moderator": r["moderator__username"],
            "n": r["n"],
            "rejected": r["rejected"],
            "reversals": r["reversals"],
        }
        for r in rows
    ]


def decision_totals() -> list[dict]:
    """Every decision ever recorded by verdict and kind (first or reversal): counters."""
    return list(
        Decision.objects.values("decision", "is_override").annotate(n=Count("pk")).order_by()
    )


def bars(rows: list[dict], key: str = "n") -> list[dict]:
    """Each row with `width`, its share of the largest value in percent: the length of its
    bar in the dashboard's server-drawn SVG (no chart library, no JavaScript)."""
    top = max((r[key] for r in rows), default=0) or 1
    return [{**r, "width": round(100 * r[key] / top, 1)} for r in rows]


def columns(hours: list[dict], height: int = 60) -> dict:
    """Decisions per hour as SVG columns: x, height and y of each, in a viewBox of
    len(hours) × `height` units."""
    top = max((h["n"] for h in hours), default=0) or 1
    cols = []
    for x, h in enumerate(hours):
        tall = round(height * h["n"] / top, 2)
        cols.append({**h, "x": x, "h": tall, "y": round(height - tall, 2)})
    return {"cols": cols, "width": max(1, len(hours)), "height": height, "top": top}


def dashboard(range_name: str, *, with_moderators: bool, now: datetime | None = None) -> dict:
    """Everything the dashboard page shows for one range (RANGES), ending now."""
    now = now or timezone.now()
    start = since(range_name, now)
    hours = decisions_per_hour(start, now)
    return {
        "range": range_name,
        "ranges": list(RANGES),
        "since": start,
        "now": now,
        "totals": queue_totals(now),
        "pending": bars(pending_by_kind_and_reason()),
        "per_hour": columns(hours),
        "decided": sum(h["n"] for h in hours),
        "time_to_decide": time_to_decide(start),
        "outcomes": bars(outcomes_by_reason(start)),
        "flag_overturn": flag_overturn_rate(start),
        "decision_overturn": decision_overturn_rate(start),
        "confirmations": confirmation_rates(start),
        "strikes": strikes_and_bans(start),
        "moderators": bars(moderator_throughput(start)) if with_moderators else None,
    }
