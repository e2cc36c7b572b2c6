"""The web server: daphne, with request bodies bounded before Django sees them.

    python -m moderation_site.server -b 0.0.0.0 -p 8000     (daphne's options; the
                                                             application is ours unless named)

Daphne 4.2 on Twisted buffers a whole request body, then parses it, before the application
runs: a 100 MB POST to a path that does not exist grew the process by over 1 GB, and no
check inside Django or an ASGI wrapper comes early enough. This module runs daphne's own
command line with these changes (``LimitedRequest`` is its HTTP/1.1 request):

- A body over ``settings.REQUEST_MAX_BYTES`` is refused with 413 and the one error shape
  (``{"code": "too_large", "detail": ...}``) on every path: from ``Content-Length`` as soon as
  the headers are in (``gotLength``), before a byte of the body is read, and while it
  streams when there is none (chunked: ``handleContentChunk`` counts). The connection is
  then closed once the client has stopped sending, at most ``DRAIN_SECONDS`` or
  ``DRAIN_BYTES`` later (reading the rest, unkept, lets a client that sends its whole
  body before reading, as browsers and `requests` do, see the answer rather than a reset
  connection); a client that sent ``Expect: 100-continue`` never sends the body at all.
- Twisted's own parse of form bodies into ``request.args`` (the ``email`` package on the
  whole body in memory; daphne never reads it) is off: ``parsePOSTFormSubmission=False``.
- The application reads the body from Twisted's spooled file ``BODY_CHUNK`` bytes at a
  time as it asks (``BodyQueue``); daphne pushes every chunk of it into the application's
  queue at once, so an accepted 400 MB batch was 400 MB of memory.
- After each request the memory it freed goes back to the system (``moderation_site
  .memory``): glibc keeps what a thread freed, and each request's view has a thread to itself.

The reverse proxy in front should refuse the same bodies first (nginx:
``client_max_body_size``, README "Production set-up").
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from functools import partial

from daphne.cli import CommandLineInterface  # first: installs Twisted's asyncio reactor
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from django.conf import settings
from django.core.signals import request_finished
from twisted.internet import reactor

from moderation_site.errors import error_body
from moderation_site.memory import release_freed_memory

logger = logging.getLogger(__name__)

APPLICATION = "moderation_site.asgi:application"
_APPLICATION_ARG = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # daphne's "module:attribute"
BODY_CHUNK = 64 * 1024  # bytes per http.request message to the application
# After a refusal: how long and how much of the rest of a body is read (and dropped) before
# the connection is closed anyway. 1 GB is about 0.3 s of CPU at loopback speed.
DRAIN_SECONDS = 10.0
DRAIN_BYTES = 1 << 30


def _megabytes(n: int) -> str:
    return f"{n / (1 << 20):.1f}".removesuffix(".0") + " MB"


def too_large_detail(limit: int, length: int | None = None) -> str:
    """The refusal's sentence: the body's size when it was declared, and the limit."""
    if length is None:
        return f"The request body is larger than {_megabytes(limit)}, the limit."
    return f"The request body is {_megabytes(length)}; the limit is {_megabytes(limit)}."


class LimitedRequest(WebRequest):
    """daphne's request, refusing a body over ``server.max_body`` (see the module)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(*args, **kwargs)
        self.max_body = getattr(self.server, "max_body", settings.REQUEST_MAX_BYTES)
        self.body_received = 0
        self.refused = False
        self._drained = 0
        self._drain_timer = None

    # Twisted's channel calls these, in this order, as the request comes in.

    def gotLength(self, length):
        if length is not None and length > self.max_body:
            super().gotLength(0)  # an empty in-memory file: nothing of the body is kept
            self.refuse(length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.refused:
            self._drain(len(data))
            return
        self.body_received += len(data)
        if self.body_received > self.max_body:
            self.refuse(None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if self.refused:  # the client has sent the rest: the answer is out, close
            self._close()
            return
        super().requestReceived(command, path, version)

    # The refusal.

    def refuse(self, length: int | None) -> None:
        """Answer 413 now, keep nothing more of the body and close the connection once the
        client stops sending (or DRAIN_SECONDS / DRAIN_BYTES on)."""
        self.refused = True
        channel = self.channel
        # Twisted would send "100 Continue" next: the client must not send the body at all.
        self.requestHeaders.removeHeader(b"Expect")
        if self.content is not None:
            self.content.close()
        body = json.dumps(error_body("too_large", too_large_detail(self.max_body, length)))
        payload = body.encode()
        head = (
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n"
            b"Connection: close\r\n"
            b"\r\n"
        )
        channel.persistent = False
        channel.transport.write(head + payload)
        logger.warning(
            "Refused a request body of %s from %s (limit %s)",
            "more than the limit" if length is None else f"{length:,} bytes",
            getattr(self.client, "host", self.client),
            f"{self.max_body:,} bytes",
        )
        self._drain_timer = reactor.callLater(DRAIN_SECONDS, self._close)

    def _drain(self, size: int) -> None:
        self._drained += size
        if self._drained > DRAIN_BYTES:
            self._close()

    def _close(self) -> None:
        if self._drain_timer is not None and self._drain_timer.active():
            self._drain_timer.cancel()
        self._drain_timer = None
        if self.channel is not None:
            self.channel.loseConnection()

    def connectionLost(self, reason):
        if self._drain_timer is not None and self._drain_timer.active():
            self._drain_timer.cancel()
        super().connectionLost(reason)


class LimitedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = LimitedRequest
        return protocol


class BodyQueue(asyncio.Queue):
    """An application's receive queue that reads the request body from the request's file
    as the application asks for it.

    daphne's ``WebRequest.process`` reads the whole body into the queue at once; its first
    chunk here moves the file to its end (so that the loop stops at its next read) and is
    dropped, and ``get`` reads the body from the start, BODY_CHUNK bytes at a time.
    """

    def __init__(self, request: WebRequest):
        super().__init__()
        self.request = request
        self.offset = 0
        self.body_done = False

    def put_nowait(self, item):
        if item.get("type") == "http.request" and not self.body_done:
            content = self.request.content
            if content is not None and not content.closed:
                content.seek(0, os.SEEK_END)
            return
        super().put_nowait(item)

    async def get(self):
        if not self.body_done:
            content = self.request.content
            if content is None or content.closed:  # the client went away: its disconnect
                self.body_done = True
            else:
                content.seek(self.offset)
                chunk = content.read(BODY_CHUNK)
                self.offset += len(chunk)
                more = len(chunk) == BODY_CHUNK
                self.body_done = not more
                return {"type": "http.request", "body": chunk, "more_body": more}
        return await super().get()


class LimitedServer(Server):
    """daphne's server with LimitedRequest for HTTP/1.1 and BodyQueue for the application.

    ``max_body`` defaults to settings.REQUEST_MAX_BYTES. HTTP/2 (daphne serves it only with
    TLS and Twisted's h2 extra, neither used here: the proxy speaks it) is not covered.
    """

    def __init__(self, *args, max_body: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_body = settings.REQUEST_MAX_BYTES if max_body is None else max_body

    # daphne.server.Server.run() makes ``self.http_factory = HTTPFactory(self)``: ours instead.
    @property
    def http_factory(self):
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory):
        if type(factory) is HTTPFactory:
            factory = LimitedHTTPFactory(self)
        self._http_factory = factory

    def create_application(self, protocol, scope):
        """daphne's, with a BodyQueue for HTTP requests (``Server.create_application`` in
        daphne 4.2 makes a plain asyncio.Queue inline)."""
        if scope.get("type") != "http" or not isinstance(protocol, WebRequest):
            return super().create_application(protocol, scope)
        assert "application_instance" not in self.connections[protocol]
        input_queue = BodyQueue(protocol)
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=partial(self.handle_reply, protocol),
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance,
            loop=asyncio.get_event_loop(),
        )
        return input_queue


class LimitedCommandLine(CommandLineInterface):
    description = "The moderation site's web server (daphne, with request bodies bounded)"
    server_class = LimitedServer


def main(argv: list[str] | None = None) -> None:
    """daphne's command line; the application defaults to moderation_site.asgi."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_site.settings")
    # Each request's view runs in a thread lent to it, whose freed memory glibc keeps.
    request_finished.connect(release_freed_memory, dispatch_uid="release_freed_memory")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(_APPLICATION_ARG.fullmatch(arg) for arg in argv):
        argv.append(APPLICATION)
    LimitedCommandLine().run(argv)


if __name__ == "__main__":
    main()
