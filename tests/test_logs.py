"""Structured logs: every line of an analysis carries the item and request ids, whichever
module writes it, and LOG_FORMAT=json writes one JSON object a line."""

import io
import json
import logging

import pytest

from moderation_site.logs import ContextFilter, JsonFormatter, log_context
from review import pipeline
from review.classifiers import Classifier, ClassifierError, registry
from uploads.intake import ingest_bytes


class Broken(Classifier):
    name = "broken"

    def classify(self, image):
        logging.getLogger("some.library").info("calling the provider")
        raise ClassifierError("model exploded")


@pytest.fixture
def broken_provider(monkeypatch, policy):
    monkeypatch.setitem(registry.PROVIDERS, "broken", f"{__name__}.Broken")
    registry._instances.pop("broken", None)
    policy.providers = "broken"
    policy.save()


@pytest.fixture
def json_lines():
    """The root logger's lines as the console writes them with LOG_FORMAT=json."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_every_line_of_an_analysis_carries_its_item_and_request_ids(
    uploader, jpeg, broken_provider, json_lines
):
    item = ingest_bytes(jpeg("coffee"), name="x.jpg", source="web", uploader=uploader)
    logging.getLogger("before").info("not part of the analysis")
    analysis = pipeline.analyse_item(item.pk, request_id="6f1c1d7e-5b7a-4c34-9a0e-0c1a2b3c4d5e")
    logging.getLogger("after").info("not part of it either")

    lines = json_lines()
    during = [line for line in lines if line["logger"] not in ("before", "after")]
    # The provider's own line and the registry's warning about it, at least.
    assert {"some.library", "review.classifiers.registry"} <= {line["logger"] for line in during}
    for line in during:
        assert line["item_id"] == str(item.pk), line
        assert line["request_id"] == str(analysis.request_id), line
    outside = [line for line in lines if line["logger"] in ("before", "after")]
    assert len(outside) == 2 and all("item_id" not in line for line in outside)


def test_the_context_nests_and_is_restored(json_lines):
    log = logging.getLogger("t")
    with log_context(request_id="r-1"):
        with log_context(item_id=7):
            log.info("inner")
        log.warning("outer")
    first, second = json_lines()
    assert (first["item_id"], first["request_id"]) == ("7", "r-1")
    assert "item_id" not in second and second["request_id"] == "r-1"
    assert second["level"] == "WARNING" and second["message"] == "outer"


def test_an_exception_is_one_json_line_with_its_traceback(json_lines):
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("t").exception("it failed")
    (line,) = json_lines()
    assert line["message"] == "it failed" and "ValueError: bad" in line["exc"]


def test_the_settings_install_the_filter_and_the_json_format(settings):
    from django.utils.log import configure_logging

    settings.LOGGING["handlers"]["console"]["formatter"] = "json"
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    try:
        (handler,) = [h for h in logging.getLogger().handlers if h.filters]
        assert isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(f, ContextFilter) for f in handler.filters)
    finally:
        settings.LOGGING["handlers"]["console"]["formatter"] = "text"
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
