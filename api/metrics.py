"""Callback delivery figures for /metrics (moderation_site.metrics), read at scrape time."""

from django.db.models import Count, Q
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import Delivery, DeliveryAttempt


class DeliveryCollector:
    def collect(self):
        by_status = GaugeMetricFamily(
            "moderation_webhook_deliveries",
            "Callback deliveries by status (failed: every retry spent, given up).",
            labels=["status"],
        )
        counts = dict(Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in Delivery.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        failed = DeliveryAttempt.objects.aggregate(
            n=Count("pk", filter=Q(status_code__isnull=True) | ~Q(status_code__range=(200, 299)))
        )["n"]
        yield CounterMetricFamily(
            "moderation_webhook_delivery_failures",
            "Callback POSTs that failed (no answer, or a status outside 2xx).",
            failed,
        )
