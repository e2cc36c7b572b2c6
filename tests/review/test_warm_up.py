"""A worker process loads the policies' classifiers as it starts (review.tasks), so that the
first item does not wait for the models."""

import logging
import threading

import pytest

from review import tasks
from review.classifiers import nudenet, registry
from review.classifiers.base import Classifier
from review.models import Policy


class Broken(Classifier):
    name = "broken"

    def warm(self):
        raise OSError("model file unreadable")


@pytest.fixture
def cold_nudenet(monkeypatch):
    monkeypatch.setattr(nudenet, "_session", None)
    monkeypatch.setattr(registry, "_instances", {})


def test_warm_up_loads_the_model_and_a_broken_provider_is_logged(cold_nudenet, caplog):
    registry.register("broken", f"{__name__}.Broken")
    try:
        with caplog.at_level(logging.WARNING, logger="review.classifiers.registry"):
            registry.warm_up(["broken", "nudenet"])
    finally:
        registry.unregister("broken")
    assert nudenet._session is not None  # loaded ahead of any item
    assert "could not load classifier broken" in caplog.text


@pytest.mark.django_db
def test_process_init_warms_the_policys_providers_in_a_thread(cold_nudenet, monkeypatch):
    policy = Policy.current()
    policy.providers = "nudenet"
    policy.save()
    started = []
    real_thread = threading.Thread

    def recording_thread(*args, **kwargs):
        thread = real_thread(*args, **kwargs)
        started.append(thread)
        return thread

    monkeypatch.setattr(tasks.threading, "Thread", recording_thread)
    tasks.warm_classifiers()
    assert [t.name for t in started] == ["warm-classifiers"]
    started[0].join(timeout=30)
    assert nudenet._session is not None
    assert set(registry._instances) == {"nudenet"}  # the text model was not asked for


@pytest.mark.django_db
def test_warming_can_be_turned_off(cold_nudenet, settings):
    settings.CLASSIFIERS_WARM_AT_START = False
    tasks.warm_classifiers()
    assert nudenet._session is None
