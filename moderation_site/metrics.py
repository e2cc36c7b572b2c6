"""Prometheus metrics: the process's own counters and histograms, the collectors the apps
register (figures read from the database at scrape time), and the `/metrics` view.

Two kinds of figure:

- what happens inside a process (analysis stage latencies, classifier errors, Slack API
  errors): prometheus-client counters and histograms defined here, so any app can
  increment them (`SLACK_API_ERRORS.labels(method="chat.postMessage").inc()`);
- what the database knows (the queue, decisions, outcomes, deliveries, banks): collectors
  an app registers in its `apps.py` (`register_collector`), which read the rows when
  Prometheus scrapes. They are the same whichever web process answers, and need no
  shared state between daphne and the Celery workers.

The analyses run in Celery workers, the scrape reaches a web process: for the in-process
figures to add up across processes on a host, set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory shared by every process of the node (web and workers), cleared at each start,
before the processes start (prometheus-client reads it at import). The view then merges
every process's files (`MultiProcessCollector`). Without it each process reports its own
figures only (fine for the embedded defaults, where analyses run in the web process).

Access (`metrics_view`): a bearer token (`METRICS_TOKEN`) or a client address in
`METRICS_ALLOWED_NETWORKS`; without either setting the endpoint does not exist (404); any
other request gets 403. Both in the one error shape.
"""

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .errors import json_error

# Seconds; the stages of review.pipeline run from ~1 ms (match) to seconds (a classifier
# on a large animation), and a timed-out provider stops at CLASSIFIER_TIMEOUT_S.
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ANALYSIS_STAGE_SECONDS = Histogram(
    "moderation_analysis_stage_seconds",
    "Time spent in each stage of an analysis (read, decode_hash, match, classify, "
    "public_copy, total, provider_<name>).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
CLASSIFIER_ERRORS = Counter(
    "moderation_classifier_errors",
    "Classifier provider failures (error or timeout) during analyses; the item goes to review.",
    ["provider"],
)
SLACK_API_ERRORS = Counter(
    "moderation_slack_api_errors",
    "Slack Web API calls that failed (HTTP error, transport error or ok=false).",
    ["method"],
)

_collectors: list = []


def register_collector(collector) -> None:
    """A collector (prometheus-client's `collect()` interface) read at every scrape; apps
    register theirs in `AppConfig.ready()`. Registered once per process."""
    if all(type(c) is not type(collector) for c in _collectors):
        _collectors.append(collector)


def observe_analysis(timings: dict, errors: dict) -> None:
    """One analysis's stage timings (milliseconds, as the audit record keeps them) and its
    classifier errors (provider → message; "pipeline" is the pipeline's own failure)."""
    for stage, ms in timings.items():
        if isinstance(ms, int | float):
            ANALYSIS_STAGE_SECONDS.labels(stage=stage).observe(ms / 1000)
    for provider in errors:
        if provider != "pipeline":
            CLASSIFIER_ERRORS.labels(provider=provider).inc()


def exposition() -> bytes:
    """The text format: the in-process figures (every process's, in multiprocess mode)
    followed by the database figures."""
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        out = generate_latest(registry)
    else:
        out = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)  # collect once, at the scrape
    for collector in _collectors:
        database.register(collector)
    return out + generate_latest(database)


def _allowed(request) -> bool | None:
    """True: let in; False: refuse; None: the endpoint is off (no token, no networks)."""
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    networks = getattr(settings, "METRICS_ALLOWED_NETWORKS", []) or []
    if not token and not networks:
        return None
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def metrics_view(request):
    allowed = _allowed(request)
    if allowed is None:
        return json_error(404, "not_found", "Not found.")
    if not allowed:
        return json_error(403, "forbidden", "Metrics need the bearer token or an allowed address.")
    if request.method not in ("GET", "HEAD"):
        return json_error(405, "method_not_allowed", "Use GET.")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
