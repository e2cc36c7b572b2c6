"""HTTP through Django, websockets through Channels with origin and session checks.

Django's own ASGI handler runs the middleware in async mode: each ``MiddlewareMixin``
middleware hops to a thread and back for its request and response halves, and a sync-only
one (ours) turns the rest of the chain back with ``async_to_sync``; every view here is
sync. ``SyncChainHandler`` loads the middleware as the sync chain WSGI uses and runs the
whole request in one hop to the request's thread: ``request_started``, the chain, and the
close of a whole answer (Django's handler made two more hops for those), in a thread lent
from ``RequestThreads`` rather than started for the request. Measured under daphne on
loopback, one keep-alive connection, 2 million bank entries (bench/api_lookup.py): an API
lookup of one PDQ hash takes 2.68 ms p50 against 4.44 ms through Django's own handler in
the same run, a 404 1.27 against 2.95 ms (a bare ASGI app under daphne answers in 0.43 ms).
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
django.setup(set_prefix=False)


class RequestThreads:
    """Threads lent to one request at a time, each a one-thread executor (asgiref's
    ``ThreadSensitiveContext(executor=...)``): the request's sync steps all run in its
    thread, as with Django's handler, but the thread is not started for the request and
    joined after it. That start and join cost 0.34 ms of the 0.50 ms a request's hop took
    (a hop to a running thread: 0.16 ms). Used from the event loop's thread only.

    A reused thread keeps what Django keeps per thread between requests, as a threaded
    WSGI server's do: its database connection is closed (or given back to the pool) at
    each request's end as before (``request_finished``)."""

    def __init__(self, idle_max: int = 64):
        self.idle_max = idle_max
        self._idle: list[ThreadPoolExecutor] = []

    def lend(self) -> ThreadPoolExecutor:
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.idle_max:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)


class SyncChainHandler(ASGIHandler):
    """Django's ASGI handler, its middleware chain entered once, in the request's thread."""

    def __init__(self):
        super().__init__()
        self.load_middleware(is_async=False)
        self.threads = RequestThreads()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.lend()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)

    async def handle(self, scope, receive, send):
        """Django's ``handle`` with its sync steps in one hop: ``request_started`` (sent
        through ``asend``, a hop of its own for its sync receivers), the request and its
        response, and, for a response already whole, its ``close`` (a third hop, after
        sending). A streamed response is sent and closed as Django does, while listening
        for a disconnect (its steps run in the request's thread, api.banks.streamed).

        Not kept from Django for whole responses: listening for a disconnect while the
        view runs. It cancels the task awaiting a sync view, not the view's thread, so the
        view ran to its end either way; its answer to a closed connection is dropped by the
        server (daphne: ``handle_reply``)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            if response.streaming:
                await self._stream(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """What the request's thread does: the whole request (``get_response`` does what
        Django's async path does: urlconf, closers, log_response), and the close of a whole
        response (request_finished: its database connection back to the pool)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server chunks, as Django's
        if not response.streaming:
            response.close()
        return response

    async def _stream(self, response, receive, send):
        """Send a streamed response, stopping when the client goes away (Django's
        ``handle``), then close it in the request's thread."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
            for task in (listening, sending):
                if not task.done():
                    task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, RequestAborted):
                    pass
        finally:
            await sync_to_async(response.close, thread_sensitive=True)()


django_asgi_app = SyncChainHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from moderation_site.origins import ExactOriginValidator  # noqa: E402
from moderation_site.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Scheme, host and port exactly as in settings.WEBSOCKET_ALLOWED_ORIGINS.
        "websocket": ExactOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
