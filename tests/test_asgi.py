"""HTTP through the ASGI application as daphne runs it: Django's middleware entered as one
sync chain (moderation_site.asgi.SyncChainHandler), with every answer as under WSGI."""

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator

from api import services
from moderation_site.asgi import application, django_asgi_app

pytestmark = pytest.mark.django_db(transaction=True)


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
    client = services.create_client("asgi client", scopes=("lookup",))
    _, raw = services.issue_key(client)
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
