"""The upload page's websocket: signed-in uploaders get their own items' updates, live."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from moderation_site.asgi import application
from review import pipeline
from tests.services import close_code
from uploads.intake import ingest_bytes

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_uploader_receives_the_decision_of_their_item(uploader, jpeg):
    from uploads.consumers import UploadStatusConsumer

    comm = WebsocketCommunicator(UploadStatusConsumer.as_asgi(), "/ws/uploads/")
    comm.scope["user"] = uploader
    connected, _ = await comm.connect()
    assert connected
    item = await sync_to_async(ingest_bytes)(
        jpeg("coffee"), name="c.jpg", source="web", uploader=uploader
    )
    await sync_to_async(pipeline.analyse_item)(item.pk)
    message = await comm.receive_json_from(timeout=5)
    assert message["item"]["id"] == str(item.uuid)
    assert message["item"]["status"] == "passed" and message["item"]["category"] == "neutral"
    await comm.disconnect()


async def test_another_users_socket_hears_nothing(uploader, outsider, jpeg):
    from uploads.consumers import UploadStatusConsumer

    comm = WebsocketCommunicator(UploadStatusConsumer.as_asgi(), "/ws/uploads/")
    comm.scope["user"] = outsider
    assert (await comm.connect())[0]
    item = await sync_to_async(ingest_bytes)(
        jpeg("coffee"), name="c.jpg", source="web", uploader=uploader
    )
    await sync_to_async(pipeline.analyse_item)(item.pk)
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_anonymous_and_foreign_origin_sockets_are_refused(settings):
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["http://127.0.0.1:8000"]  # our page's origin
    comm = WebsocketCommunicator(
        application, "/ws/uploads/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    connected, _ = await comm.connect()
    assert connected and await close_code(comm) == 4401  # signed out, said so
    comm = WebsocketCommunicator(
        application, "/ws/uploads/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected
