"""HTTP through the ASGI application as daphne runs it: Django's middleware entered as one
sync chain (moderation_site.asgi.SyncChainHandler) in a thread lent to the request, with
every answer as under WSGI; streamed answers stream, stop when the client leaves, and are
closed in the request's thread."""

import asyncio
import json
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import HttpCommunicator
from django.core.signals import request_finished
from django.db import connections

from api import services
from hashing import services as bank_services
from hashing.models import BankChange
from moderation_site.asgi import RequestThreads, application, django_asgi_app

pytestmark = pytest.mark.django_db(transaction=True)


def raw_key(*scopes) -> str:
    """A key of a new client holding these scopes, as a client sends it."""
    return services.issue_key(services.create_client("asgi client", scopes=scopes))[1]


def fetch(path: str, headers=()) -> tuple[int, dict, bytes]:
    async def go():
        asked = [(b"host", b"testserver"), *headers]
        communicator = HttpCommunicator(application, "GET", path, headers=asked)
        response = await communicator.get_response(timeout=10)
        # Let the app end: it closes the response (request_finished returns the request
        # thread's database connection), or the test database is left in use.
        await communicator.wait(timeout=10)
        return response

    response = asyncio.run(go())
    return response["status"], dict(response["headers"]), response["body"]


def test_the_middleware_is_one_sync_chain():
    chain = django_asgi_app._middleware_chain
    assert not asyncio.iscoroutinefunction(chain)


def test_an_api_lookup_and_its_errors_answer_through_the_chain():
    raw = raw_key("lookup")
    query = "/api/v1/lookup?algorithm=pdq&hash=" + "f" * 64
    status, headers, body = fetch(query, [(b"x-api-key", raw.encode())])
    assert status == 200, body
    assert json.loads(body)["verdict"]["blocked"] is False
    # No key: the API's 401 in the one error shape, from DRF under the same chain.
    status, _, body = fetch(query)
    assert status == 401 and json.loads(body)["code"] == "not_authenticated"
    # A path nobody serves, asked for JSON: JsonErrorMiddleware's 404 shape.
    status, _, body = fetch("/api/v1/nothing-here", [(b"accept", b"application/json")])
    assert status == 404 and json.loads(body)["code"] == "not_found"


def test_a_whole_answer_is_closed_once_in_the_request_thread_before_it_is_sent():
    finished = []

    def note(**kwargs):
        finished.append(threading.current_thread().name)

    request_finished.connect(note)
    try:
        status, _, _ = fetch("/api/v1/nothing-here", [(b"accept", b"application/json")])
    finally:
        request_finished.disconnect(note)
    assert status == 404
    assert len(finished) == 1 and finished[0].startswith("request")


@pytest.mark.postgres  # an in-memory SQLite test database is never closed (Django's rule)
def test_the_request_thread_keeps_no_database_connection_between_requests():
    raw = raw_key("lookup")
    query = "/api/v1/lookup?algorithm=pdq&hash=" + "f" * 64
    assert fetch(query, [(b"x-api-key", raw.encode())])[0] == 200
    assert django_asgi_app.threads._idle, "the request's thread was given back"
    executor = django_asgi_app.threads._idle[-1]
    # request_finished closed it (CONN_MAX_AGE 0) or gave it back to the pool.
    assert executor.submit(lambda: connections["default"].connection).result() is None


def test_threads_are_lent_to_one_request_at_a_time_and_reused():
    threads = RequestThreads(idle_max=1)
    first, second = threads.lend(), threads.lend()
    assert first is not second  # two requests at once: two threads
    threads.give_back(first)
    threads.give_back(second)  # over idle_max: shut down, not kept
    assert threads.lend() is first
    assert second._shutdown
    first.shutdown()


def streamed_export(rows: int, *, leave_after_first: bool):
    """GET a bank's export through the app, the client leaving after the first part or
    reading it all: (the body messages received, the bank's export audit rows)."""
    bank = bank_services.create_bank("streamed")
    lines = ["hash_type,hash_value"] + [f"pdq,{i:064x}" for i in range(1, rows + 1)]
    bank_services.import_hash_list(bank, lines)
    raw = raw_key("banks:read")
    path = f"/api/v1/banks/{bank.pk}/export"
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"x-api-key", raw.encode())],
    }

    async def go():
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": b""})
        start = await app.receive_output(10)
        assert start["type"] == "http.response.start" and start["status"] == 200
        bodies = [await app.receive_output(10)]
        if leave_after_first:
            await app.send_input({"type": "http.disconnect"})
        else:
            while bodies[-1].get("more_body"):
                bodies.append(await app.receive_output(10))
        await app.wait(10)
        return bodies

    bodies = asyncio.run(go())
    return bodies, list(BankChange.objects.filter(bank=bank, action="exported"))


def test_an_export_read_to_its_end_through_the_app_is_whole_and_audited():
    bodies, exports = streamed_export(6000, leave_after_first=False)
    text = b"".join(b.get("body", b"") for b in bodies).decode()
    assert len(text.splitlines()) == 6001 and f"{6000:064x}" in text
    assert [e.detail["entries"] for e in exports] == [6000]
    assert "complete" not in exports[0].detail


def test_an_export_stops_when_the_client_leaves_and_says_it_was_not_complete():
    # About seven parts of ~256 KB: the app may make one or two more before it reads the
    # disconnect (with two parts, it sometimes had made the last one already).
    _, exports = streamed_export(20000, leave_after_first=True)
    # Closed in the request's thread, where its query ran: the audit row is written, and
    # it tells of a part only (the rest was never read from the database).
    assert len(exports) == 1
    assert exports[0].detail["complete"] is False and exports[0].detail["entries"] < 20000
