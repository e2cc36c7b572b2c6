"""The bank figures for /metrics (moderation_site.metrics), read at scrape time: what every
process's matcher indexes (enabled entries of active banks) and the bank version, plus the
state of this process's own index when it has built one (the web process may never vote)."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from .matcher import matcher
from .models import BankEntry, BankVersion


class BankCollector:
    def collect(self):
        entries = GaugeMetricFamily(
            "moderation_bank_index_entries",
            "Hashes the matcher indexes: enabled entries of active banks, by bank kind and "
            "algorithm.",
            labels=["bank_kind", "algorithm"],
        )
        rows = (
            BankEntry.objects.filter(enabled=True, bank__active=True)
            .values("bank__kind", "algorithm")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            entries.add_metric([row["bank__kind"], row["algorithm"]], row["n"])
        yield entries

        _token, counter = BankVersion.read()
        yield GaugeMetricFamily(
            "moderation_bank_version",
            "The banks' change counter (BankVersion.counter): raised by every bank change.",
            counter,
        )
        state = matcher._state  # this process's build, if any: never built here on purpose
        local = GaugeMetricFamily(
            "moderation_bank_index_process_entries",
            "Entries in this process's matcher index, and the bank version it is at.",
            labels=["what"],
        )
        if state is not None:
            local.add_metric(["entries"], len(state))
            local.add_metric(["version"], state.counter)
            local.add_metric(["pending_changes"], state.pending)
        yield local
