"""The client's rate as a sliding window counter (api.throttling): the previous window
counts by how much of it overlaps, only allowed requests count, Retry-After says when the
next one is allowed, and the cost per request does not grow with the rate. Runs on Redis
when REDIS_URL is set (one pipelined round trip) and on the local-memory cache otherwise."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from api import throttling


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock (DRF's `timer`), set by the test: windows are a minute long."""
    now = {"t": 6_000_000.0}  # the start of a minute window
    monkeypatch.setattr(throttling.ClientRateThrottle, "timer", lambda self: now["t"])
    return now


def test_the_previous_window_counts_by_its_overlap(api, api_client_row, clock):
    api_client_row.throttle_rate = "4/minute"
    api_client_row.save()
    url = reverse("api:me")
    assert [api.get(url).status_code for _ in range(5)] == [200, 200, 200, 200, 429]
    clock["t"] += 60 + 15  # a quarter into the next window: 4 x 0.75 = 3 still count
    assert api.get(url).status_code == 200  # 3 + 1
    denied = api.get(url)
    assert denied.status_code == 429
    # the next one fits when 1 + 1 + 4 x (1 - t/60) <= 4: at t = 30 s, 15 s from now
    assert int(denied["Retry-After"]) == 15
    clock["t"] += 14
    assert api.get(url).status_code == 429
    clock["t"] += 1.5
    assert api.get(url).status_code == 200


def test_denied_requests_do_not_count(api, api_client_row, clock):
    api_client_row.throttle_rate = "2/minute"
    api_client_row.save()
    url = reverse("api:me")
    assert [api.get(url).status_code for _ in range(2)] == [200, 200]
    assert {api.get(url).status_code for _ in range(20)} == {429}
    clock["t"] += 120  # two windows on: only the two allowed ones were ever counted
    assert [api.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_a_full_window_waits_for_the_next(api, api_client_row, clock):
    api_client_row.throttle_rate = "3/minute"
    api_client_row.save()
    url = reverse("api:me")
    clock["t"] += 50
    assert [api.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert int(api.get(url)["Retry-After"]) == 10  # the window ends in 10 s


def test_the_stored_count_stays_small_at_a_high_rate(api, api_client_row, clock):
    """DRF's own throttle stored every request's timestamp of the window in one value."""
    api_client_row.throttle_rate = "100000/minute"
    api_client_row.save()
    url = reverse("api:me")
    for _ in range(300):
        assert api.get(url).status_code == 200
    window = int(clock["t"] // 60)
    key = f"throttle_api_client_{api_client_row.pk}:{window}"
    assert cache.get(key) == 300  # one integer, whatever the count
    redis = throttling.ClientRateThrottle()._redis()
    if redis is not None:
        assert redis.strlen(cache.make_and_validate_key(key)) == 3  # "300"
        assert 0 < redis.ttl(cache.make_and_validate_key(key)) <= 121


def test_an_unreachable_redis_lets_the_request_through(api, settings, caplog):
    from tests.services import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "moderation_site.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    assert api.get(reverse("api:me")).status_code == 200
    assert "throttle not counted" in caplog.text
