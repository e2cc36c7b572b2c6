"""The review figures for /metrics, read from the database at scrape time
(moderation_site.metrics): the same in whichever web process answers."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import health


class QueueCollector:
    """Queue, decisions, automatic outcomes, confirmations, strikes and bans."""

    def collect(self):
        pending = GaugeMetricFamily(
            "moderation_queue_pending_items",
            "Unclaimed items waiting for a person, by kind, machine reason and purpose.",
            labels=["kind", "reason", "purpose"],
        )
        for row in health.pending_by_kind_and_reason():
            pending.add_metric([row["kind"], row["reason"], row["purpose"]], row["n"])
        yield pending

        totals = health.queue_totals()
        yield GaugeMetricFamily(
            "moderation_queue_claimed_items", "Items held by a moderator now.", totals["claimed"]
        )
        yield GaugeMetricFamily(
            "moderation_queue_oldest_pending_age_seconds",
            "Age of the oldest unclaimed item (since it was posted); 0 when the queue is empty.",
            totals["oldest_pending_age_s"] or 0.0,
        )

        decisions = CounterMetricFamily(
            "moderation_decisions",
            "Human decisions recorded (first decisions and reversals), by verdict.",
            labels=["decision", "reversal"],
        )
        for row in health.decision_totals():
            decisions.add_metric(
                [row["decision"], "true" if row["is_override"] else "false"], row["n"]
            )
        yield decisions

        outcomes = CounterMetricFamily(
            "moderation_automatic_outcomes",
            "Automatic analyses recorded, by outcome and machine reason.",
            labels=["outcome", "reason"],
        )
        for row in health.outcomes_by_reason():
            outcomes.add_metric([row["outcome"], row["reason"]], row["n"])
        yield outcomes

        day = health.since("day")
        overturned = GaugeMetricFamily(
            "moderation_flag_overturn_ratio_24h",
            "Of automatically flagged items decided by a person in the last 24 h, the share "
            "restored (approved).",
        )
        rate = health.flag_overturn_rate(day).value
        if rate is not None:
            overturned.add_metric([], rate)
        yield overturned

        bans = health.strikes_and_bans(day)
        yield GaugeMetricFamily(
            "moderation_authors_banned", "Authors banned now.", bans["banned_now"]
        )
