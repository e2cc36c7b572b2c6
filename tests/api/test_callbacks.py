"""Client callbacks over real HTTP: a loopback receiver checks every signature with the
recipe in the README and answers errors and timeouts to exercise the retries."""

import http.server
import json
import logging
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse

from api import callbacks, services, tasks
from api.models import Delivery, DeliveryAttempt, Submission
from review import claims, decisions
from tests.conftest import encode
from uploads.intake import ingest_bytes
from uploads.models import MediaItem
from uploads.urlfetch import FetchRefused, post_url

TIMEOUT = 0.5  # settings.CALLBACK_TIMEOUT in these tests


def readme_recipe():
    """The verification example of the README's "Callbacks" section, run as written."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = text.split("#### Callbacks", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify"]


verify = readme_recipe()


class Receiver(http.server.ThreadingHTTPServer):
    """Answers each POST with the next scripted answer (a status, or ("slow", status) to
    answer after the caller's timeout), then 200; records what came and whether its
    signature verified."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.secret = ""
        self.script = deque()
        self.received = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/moderation?token=client-own"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        header = self.headers.get("X-Moderation-Signature", "")
        server = self.server
        server.received.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "verified": bool(header) and verify(server.secret, header, body),
            }
        )
        answer = server.script.popleft() if server.script else 200
        if isinstance(answer, tuple):
            time.sleep(TIMEOUT * 3)
            answer = answer[1]
        if answer in (301, 302, 307):
            self.send_response(answer)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        reply = b"ok" if answer < 300 else b"receiver says no " * 100
        try:
            self.send_response(answer)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except OSError:
            pass  # the caller gave up waiting

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(loopback_allowed, settings):
    settings.CALLBACK_TIMEOUT = TIMEOUT


@pytest.fixture
def partner(api_client_row, receiver):
    api_client_row.callback_url = receiver.url
    api_client_row.save()
    receiver.secret = api_client_row.signing_secret
    return api_client_row


def client_item(client, data: bytes, user_uuid="user-42", name="photo.jpg") -> MediaItem:
    """What the analyses endpoint does: the item, through the one intake, and its
    Submission in the same transaction (the analysis starts after the commit)."""
    author = services.author_for(client, user_uuid)
    with transaction.atomic():
        item = ingest_bytes(data, name=name, source="api", author=author)
        Submission.objects.create(
            client=client, item=item, user_uuid=user_uuid, metadata={"post": 7}
        )
    return item


def bodies(receiver):
    return [json.loads(r["body"]) for r in receiver.received]


def test_a_moderators_later_decision_and_its_reversal_reach_the_callback_signed(
    partner,
    receiver,
    loopback_allowed,
    moderator,
    policy_admin,
    venus_bytes,
    django_capture_on_commit_callbacks,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        item = client_item(partner, venus_bytes)
    item.refresh_from_db()
    assert item.status == MediaItem.Status.FLAGGED  # a model's block: confirmed by a person
    (decided,) = bodies(receiver)
    assert decided["type"] == "analysis.decided"
    assert decided["analysis"]["decision"] == "flagged"
    assert decided["analysis"]["id"] == decided["analysis"]["analysis_id"] == str(item.uuid)
    assert decided["analysis"]["user_uuid"] == "user-42"
    assert decided["analysis"]["author_status"] == "ok"
    assert decided["analysis"]["metadata"] == {"post": 7}
    assert decided["analysis"]["request_id"] and decided["analysis"]["review"] is None

    claims.claim_items(moderator, 1)
    with django_capture_on_commit_callbacks(execute=True):
        decisions.record_decision(moderator, item, "approve")
    with django_capture_on_commit_callbacks(execute=True):
        decisions.override_decision(policy_admin, item, "reject", "Not a painting after all")

    decided, reviewed, reversed_ = bodies(receiver)
    assert reviewed["type"] == "analysis.reviewed"
    assert reviewed["analysis"]["decision"] == "approved"
    assert reviewed["analysis"]["review"]["decision"] == "approve"
    assert reversed_["type"] == "analysis.reversed"
    assert reversed_["analysis"]["decision"] == "rejected"
    assert reversed_["analysis"]["review"]["reason"] == "Not a painting after all"
    assert reversed_["analysis"]["review"]["reversal"] is True
    assert reversed_["analysis"]["author_status"] == "warned"  # the rejection struck once
    assert len({b["event_id"] for b in (decided, reviewed, reversed_)}) == 3
    for request in receiver.received:
        assert request["verified"], request["headers"]
        assert request["path"] == "/hooks/moderation?token=client-own"
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["X-Moderation-Event"] == json.loads(request["body"])["type"]
        assert partner.signing_secret not in request["body"].decode()
        assert partner.signing_secret not in json.dumps(request["headers"])
    assert list(Delivery.objects.values_list("status", flat=True)) == ["delivered"] * 3
    attempt = DeliveryAttempt.objects.order_by("pk").first()
    assert attempt.status_code == 200 and attempt.duration_ms > 0 and not attempt.error
    assert attempt.url.endswith("/hooks/moderation?…")  # the client's token is not kept
    assert partner.signing_secret not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("api")]
    assert ours and not any("client-own" in line for line in ours)  # (urllib3's DEBUG shows it)


def test_a_wrong_secret_does_not_verify_and_an_old_timestamp_is_refused():
    body = b'{"event_id":"x"}'
    now = int(time.time())
    header = callbacks.signature("whsec_right", now, body)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify("whsec_right", header, body)
    assert not verify("whsec_wrong", header, body)
    assert not verify("whsec_right", header, body + b" ")
    old = callbacks.signature("whsec_right", now - 3600, body)
    assert not verify("whsec_right", old, body)
    assert callbacks.verify("whsec_right", header, body)
    assert not callbacks.verify("whsec_right", old, body)
    assert not callbacks.verify("whsec_right", "garbage", body)


def test_only_decided_items_of_clients_with_a_callback_url_are_called_back(
    partner, receiver, loopback_allowed, uploader, jpeg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest_bytes(jpeg("coffee"), name="web.jpg", source="web", uploader=uploader)
    assert receiver.received == [] and not Delivery.objects.exists()
    # Processing is not a decision.
    with django_capture_on_commit_callbacks(execute=False):
        item = client_item(partner, jpeg("coffee"))
    assert callbacks.record_event(item) is None
    # A client without a callback URL, or an inactive one, gets nothing.
    partner.callback_url = ""
    partner.save()
    item.status = MediaItem.Status.PASSED
    assert callbacks.record_event(item) is None
    partner.callback_url, partner.active = receiver.url, False
    partner.save()
    assert callbacks.record_event(item) is None
    partner.active = True
    partner.save()
    assert callbacks.record_event(item).event == "analysis.decided"


def test_errors_and_timeouts_are_retried_on_the_schedule_until_one_succeeds(
    partner, receiver, loopback_allowed, jpeg, django_capture_on_commit_callbacks, monkeypatch
):
    countdowns = []
    original = tasks.deliver_callback.retry

    def spy(*args, **kwargs):
        countdowns.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks.deliver_callback, "retry", spy)
    receiver.script.extend([500, 503, ("slow", 200), 429])  # then 200
    with django_capture_on_commit_callbacks(execute=True):
        client_item(partner, jpeg("coffee"))

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 5
    assert countdowns == list(callbacks.retry_schedule()[:4]) == [10, 60, 300, 900]
    tries = list(delivery.tries.all())
    assert [t.number for t in tries] == [1, 2, 3, 4, 5]
    assert [t.status_code for t in tries] == [500, 503, None, 429, 200]
    assert [t.retry_in for t in tries] == [10, 60, 300, 900, None]
    assert "HTTP 500" in tries[0].error and "receiver says no" in tries[0].response_excerpt
    assert "did not answer in time" in tries[2].error
    assert tries[2].duration_ms < TIMEOUT * 1000 * 2
    assert not tries[-1].error and delivery.delivered_at is not None
    # Every attempt carried the same event and body, freshly signed.
    assert len(receiver.received) == 5
    assert len({r["body"] for r in receiver.received}) == 1
    assert all(r["verified"] for r in receiver.received)
    assert [r["headers"]["X-Moderation-Attempt"] for r in receiver.received] == list("12345")
    # Retries stop after success: a late duplicate of a retry message does nothing.
    assert tasks.deliver_callback.apply(args=(delivery.pk, 3)).get() == "skipped"
    assert tasks.deliver_callback.apply(args=(delivery.pk, 5)).get() == "skipped"
    assert len(receiver.received) == 5


def test_the_schedule_spans_a_day_and_then_the_delivery_gives_up(
    partner, receiver, loopback_allowed, settings, jpeg, django_capture_on_commit_callbacks
):
    schedule = callbacks.retry_schedule()  # the shipped default
    assert len(schedule) == 10  # 11 attempts
    assert sum(schedule) == 24 * 3600 and list(schedule) == sorted(schedule)
    settings.CALLBACK_RETRY_SCHEDULE = (1, 2)
    receiver.script.extend([500] * 10)
    with django_capture_on_commit_callbacks(execute=True):
        client_item(partner, jpeg("coffee"))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED and delivery.attempts == 3
    assert [t.retry_in for t in delivery.tries.all()] == [1, 2, None]
    assert delivery.last_status_code == 500 and delivery.next_attempt_at is None


def test_a_refused_host_is_not_called_and_the_attempt_says_why(
    partner, receiver, settings, jpeg, django_capture_on_commit_callbacks
):
    # No allowance for loopback: the receiver is a refused host, as any private address.
    settings.CALLBACK_TIMEOUT = TIMEOUT
    with django_capture_on_commit_callbacks(execute=True):
        client_item(partner, jpeg("coffee"))
    delivery = Delivery.objects.get()
    (attempt,) = delivery.tries.all()
    assert receiver.received == []
    assert attempt.status_code is None and "loopback" in attempt.error
    assert attempt.retry_in is None and delivery.status == Delivery.Status.FAILED
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook"):
        partner.callback_url = url
        partner.save()
        tried = callbacks.attempt(delivery.pk, delivery.attempts, manual=True)
        delivery.refresh_from_db()
        assert tried.attempt.status_code is None and "address" in tried.attempt.error


def test_a_redirect_is_not_followed(
    partner, receiver, loopback_allowed, jpeg, django_capture_on_commit_callbacks, settings
):
    settings.CALLBACK_RETRY_SCHEDULE = ()
    receiver.script.append(302)  # to the cloud metadata address
    with django_capture_on_commit_callbacks(execute=True):
        client_item(partner, jpeg("coffee"))
    (attempt,) = Delivery.objects.get().tries.all()
    assert attempt.status_code == 302 and "redirects are not followed" in attempt.error
    assert "169.254.169.254" in attempt.error and len(receiver.received) == 1


def test_a_failed_delivery_is_resent_from_admin(
    partner,
    receiver,
    loopback_allowed,
    settings,
    jpeg,
    admin_client,
    django_capture_on_commit_callbacks,
):
    settings.CALLBACK_RETRY_SCHEDULE = ()
    receiver.script.append(500)
    with django_capture_on_commit_callbacks(execute=True):
        item = client_item(partner, jpeg("coffee"))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED

    changelist = reverse("admin:api_delivery_changelist")
    page = admin_client.get(changelist).content.decode()
    assert str(delivery.event_id) in page and "Failed" in page
    change = admin_client.get(reverse("admin:api_delivery_change", args=[delivery.pk]))
    html = change.content.decode()
    assert change.status_code == 200 and str(item.uuid) in html and "HTTP 500" in html
    assert partner.signing_secret not in page and partner.signing_secret not in html
    assert "client-own" not in html  # the URL's query is masked in the attempts
    client_page = admin_client.get(reverse("admin:api_apiclient_change", args=[partner.pk]))
    assert partner.signing_secret not in client_page.content.decode()
    assert f"whsec_…{partner.signing_secret[-4:]}" in client_page.content.decode()  # masked

    answer = admin_client.post(changelist, {"action": "resend", "_selected_action": [delivery.pk]})
    assert answer.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    last = delivery.tries.last()
    assert last.manual and last.status_code == 200
    assert len(receiver.received) == 2 and receiver.received[1]["verified"]
    assert receiver.received[0]["body"] == receiver.received[1]["body"]


def post_client_change(admin_client, client, **changes):
    """Post a client's admin change form as shown, with ``changes``."""
    page = reverse("admin:api_apiclient_change", args=[client.pk])
    form = admin_client.get(page).context["adminform"].form
    data = {**form.initial, **changes}
    data.pop("signing_secret_masked", None)
    data["scopes"] = json.dumps(data["scopes"])
    data["policy"] = data["policy"] or ""
    inline = {
        "keys-TOTAL_FORMS": "0",
        "keys-INITIAL_FORMS": "0",
        "keys-MIN_NUM_FORMS": "0",
        "keys-MAX_NUM_FORMS": "1000",
    }
    return admin_client.post(page, {**data, **inline})


def test_a_callback_url_typed_without_its_scheme_is_https_in_admin(partner, admin_client):
    answer = post_client_change(admin_client, partner, callback_url="hooks.example.com/moderation")
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    partner.refresh_from_db()
    assert partner.callback_url == "https://hooks.example.com/moderation"


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "ftp://files.example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://hooks.example.com/" + "a" * 2100,
    ],
)
def test_admin_refuses_a_callback_url_it_could_not_post_to_and_keeps_the_old_one(
    partner, admin_client, url
):
    before = partner.callback_url
    answer = post_client_change(admin_client, partner, callback_url=url)
    assert answer.status_code == 200  # the form again, with the field's error
    assert "callback_url" in answer.context["adminform"].form.errors
    partner.refresh_from_db()
    assert partner.callback_url == before


def test_the_guarded_post_reads_a_bounded_answer_within_its_timeout(receiver, loopback_allowed):
    receiver.script.extend([500, ("slow", 200)])
    answer = post_url(receiver.url, b"{}", timeout=TIMEOUT, max_response_bytes=100)
    assert answer.status == 500 and len(answer.body) == 100  # of 1,700 bytes sent
    started = time.monotonic()
    with pytest.raises(FetchRefused) as refused:
        post_url(receiver.url, b"{}", timeout=TIMEOUT)
    assert refused.value.code == "timeout" and time.monotonic() - started < TIMEOUT * 2
    with pytest.raises(FetchRefused) as refused:
        post_url(receiver.url, b"{}", allowed_networks=[])
    assert refused.value.code == "refused_address"
    with pytest.raises(FetchRefused) as refused:
        post_url("http://user:pw@127.0.0.1/", b"{}")
    assert refused.value.code == "bad_url"


@pytest.mark.redis
def test_a_real_worker_delivers_through_redis_and_retries_after_an_error(
    transactional_db, receiver, settings, jpeg
):
    from celery.contrib.testing.worker import start_worker

    from moderation_site.celery import app

    settings.URL_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.CALLBACK_TIMEOUT = TIMEOUT
    settings.CALLBACK_RETRY_SCHEDULE = (1, 1, 1)
    partner = services.create_client("worker-partner", callback_url=receiver.url)
    receiver.secret = partner.signing_secret
    receiver.script.append(500)
    app.conf.task_always_eager = False
    with start_worker(
        app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=30
    ):
        item = client_item(partner, jpeg("coffee"))
        deadline = time.monotonic() + 90
        while not Delivery.objects.filter(status=Delivery.Status.DELIVERED).exists():
            assert time.monotonic() < deadline, "the worker did not deliver the callback"
            time.sleep(0.2)
    delivery = Delivery.objects.get()
    assert [t.status_code for t in delivery.tries.all()] == [500, 200]
    assert [r["verified"] for r in receiver.received] == [True, True]
    assert json.loads(receiver.received[1]["body"])["analysis"]["id"] == str(item.uuid)


def test_a_callback_never_names_another_clients_item(
    partner, receiver, loopback_allowed, photo, django_capture_on_commit_callbacks
):
    """A copy of another client's rejected item is answered as a copy, without its id."""
    data = encode(photo("chelsea"))
    other = services.create_client("other platform")
    with django_capture_on_commit_callbacks(execute=True):
        first = client_item(other, data, user_uuid="someone-else")
    MediaItem.objects.filter(pk=first.pk).update(status=MediaItem.Status.REJECTED)
    with django_capture_on_commit_callbacks(execute=True):
        copy = client_item(partner, data)
    copy.refresh_from_db()
    assert copy.duplicate_of == first  # the platform knows ...
    (body,) = [b for b in bodies(receiver) if b["analysis"]["id"] == str(copy.uuid)]
    assert body["analysis"]["decision"] == "flagged"
    assert body["analysis"]["duplicate_of"] is None  # ... the client is not told whose
    assert str(first.uuid) not in json.dumps(body)
