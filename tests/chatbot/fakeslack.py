"""A fake Slack on loopback: the Web API methods the bot calls and the file host, as real
HTTP (``WebClient(base_url=...)`` and the SSRF-guarded download reach it over TCP).

It keeps what Slack would: messages and files with their owners, so that ``chat.delete``
and ``files.delete`` follow Slack's rule (a token deletes its own user's posts; a workspace
admin's user token deletes anyone's; a bot token only the bot's own), and records every
call (method, token, parameters) and every download (with its Authorization header). Faults
are scripted per method: ``fail("chat.delete", 429, "ok_false:ratelimited", 500)`` answers
the next calls with a 429 (``Retry-After: 1``), ``{"ok": false, "error": ...}`` and a 500.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
ADMIN_USER = "U0ADMIN"
BOT_TOKEN = "xoxb-fake-bot-token"
ADMIN_TOKEN = "xoxp-fake-admin-token"


@dataclass
class Call:
    method: str
    token: str
    params: dict
    at: float = field(default_factory=time.monotonic)


class FakeSlack(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.calls: list[Call] = []
        self.downloads: list[dict] = []
        self.views: list[dict] = []  # the modals opened (views.open)
        self.faults: dict[str, deque] = defaultdict(deque)
        self.tokens = {BOT_TOKEN: (BOT_USER, False), ADMIN_TOKEN: (ADMIN_USER, True)}
        self.messages: dict[tuple[str, str], dict] = {}
        self.files: dict[str, dict] = {}
        self.oauth_answer: dict = {}
        self._ts = itertools.count(1)

    # -- set-up --------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/"

    def post_message(
        self,
        channel: str,
        user: str,
        files: list[dict] | None = None,
        thread_ts: str = "",
        text: str = "look",
    ) -> dict:
        """A message as a member posts it; the event the Events API would send for it."""
        ts = self.next_ts()
        self.messages[(channel, ts)] = {"user": user, "thread_ts": thread_ts, "text": text}
        event = {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": user,
            "ts": ts,
            "text": text,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["subtype"] = "file_share"
            event["files"] = files
        return event

    def add_file(
        self,
        data: bytes,
        *,
        user: str,
        name: str = "photo.jpg",
        mimetype: str = "image/jpeg",
        connect_stub: bool = False,
        url: str | None = None,
    ) -> dict:
        """A file served at /files/<id> to the bot token; its event object (a Slack
        Connect stub carries only the id and ``file_access: check_file_info``)."""
        file_id = f"F{len(self.files) + 1:06d}"
        full = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "size": len(data),
            "user": user,
            "url_private": url or f"{self.origin}/files/{file_id}/{name}",
            "url_private_download": url or f"{self.origin}/files/{file_id}/download/{name}",
        }
        self.files[file_id] = {"data": data, "user": user, "info": full, "deleted": False}
        if connect_stub:
            return {"id": file_id, "mode": "file_access", "file_access": "check_file_info"}
        return dict(full)

    def fail(self, method: str, *answers) -> None:
        self.faults[method].extend(answers)

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    # -- what happened ---------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None) -> list[dict]:
        return [
            c.params
            for c in self.called("chat.postMessage")
            if channel is None or c.params.get("channel") == channel
        ]


def _parse(handler) -> tuple[str, dict]:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    parts = urlsplit(handler.path)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    kind = handler.headers.get("Content-Type", "")
    if raw and "json" in kind:
        params.update(json.loads(raw))
    elif raw:
        params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
    auth = handler.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
    if auth.startswith("Basic "):
        token = "basic:" + base64.b64decode(auth[6:]).decode()
    params.setdefault("token", "")
    if params["token"] and not token:
        token = params["token"]
    params.pop("token")
    return token, params


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeSlack

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/files/"):
            return self._download()
        return self._api()

    def do_POST(self):
        return self._api()

    def _send(self, status: int, body: bytes, kind="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: dict, status=200, headers=None):
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _download(self):
        server = self.server
        file_id = self.path.split("/")[2]
        auth = self.headers.get("Authorization", "")
        with server.lock:
            server.downloads.append({"file": file_id, "authorization": auth})
            file = server.files.get(file_id)
        if auth != f"Bearer {BOT_TOKEN}" or file is None or file["deleted"]:
            return self._send(302, b"", headers={"Location": "https://slack.com/login"})
        self._send(200, file["data"], kind=file["info"]["mimetype"])

    def _api(self):
        server = self.server
        method = urlsplit(self.path).path.removeprefix("/api/")
        token, params = _parse(self)
        with server.lock:
            server.calls.append(Call(method, token, params))
            fault = server.faults[method].popleft() if server.faults[method] else None
        if fault == 429:
            return self._json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
        if isinstance(fault, int):
            return self._send(fault, b"<html>upstream trouble</html>", kind="text/html")
        if isinstance(fault, str) and fault.startswith("ok_false:"):
            return self._json({"ok": False, "error": fault.split(":", 1)[1]})
        if method == "oauth.v2.access":
            return self._json(server.oauth_answer or {"ok": False, "error": "invalid_code"})
        who = server.tokens.get(token)
        if who is None:
            return self._json({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._json({"ok": False, "error": "unknown_method"})
        with server.lock:
            answer = handler(params, *who)
        self._json(answer)

    # -- methods ---------------------------------------------------------------------------

    def m_auth_test(self, params, user, is_admin):
        return {"ok": True, "team_id": TEAM, "user_id": user, "bot_id": BOT_ID}

    def m_chat_getPermalink(self, params, user, is_admin):
        channel, ts = params.get("channel", ""), params.get("message_ts", "")
        if (channel, ts) not in self.server.messages:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "permalink": f"https://fake.slack.test/archives/{channel}/p{ts}"}

    def m_chat_postMessage(self, params, user, is_admin):
        channel = params.get("channel", "")
        if not channel or not params.get("text"):
            return {"ok": False, "error": "no_text"}
        thread = params.get("thread_ts", "")
        if thread and (channel, thread) not in self.server.messages:
            return {"ok": False, "error": "thread_not_found"}
        parent = self.server.messages.get((channel, thread), {}) if thread else {}
        if parent.get("deleted") and not parent.get("replies"):
            return {"ok": False, "error": "thread_not_found"}  # deleted before any reply
        ts = self.server.next_ts()
        self.server.messages[(channel, ts)] = {"user": user, "thread_ts": thread}
        if thread:
            self.server.messages[(channel, thread)]["replies"] = True
        return {"ok": True, "channel": channel, "ts": ts}

    def m_chat_postEphemeral(self, params, user, is_admin):
        return {"ok": True, "message_ts": self.server.next_ts()}

    def m_chat_delete(self, params, user, is_admin):
        key = (params.get("channel", ""), params.get("ts", ""))
        message = self.server.messages.get(key)
        if message is None or message.get("deleted"):
            return {"ok": False, "error": "message_not_found"}
        if message["user"] != user and not is_admin:
            return {"ok": False, "error": "cant_delete_message"}
        message["deleted"] = True
        return {"ok": True, "channel": key[0], "ts": key[1]}

    def m_files_delete(self, params, user, is_admin):
        file = self.server.files.get(params.get("file", ""))
        if file is None or file["deleted"]:
            return {"ok": False, "error": "file_not_found"}
        if file["user"] != user and not is_admin:
            return {"ok": False, "error": "cant_delete_file"}
        file["deleted"] = True
        return {"ok": True}

    def m_conversations_replies(self, params, user, is_admin):
        """A thread: its parent and replies, oldest first (deleted ones are gone)."""
        channel, parent = params.get("channel", ""), params.get("ts", "")
        if (channel, parent) not in self.server.messages:
            return {"ok": False, "error": "thread_not_found"}
        thread = [
            {"ts": ts, "user": m["user"], "text": m.get("text", "")}
            for (c, ts), m in sorted(self.server.messages.items())
            if c == channel
            and (ts == parent or m.get("thread_ts") == parent)
            and not m.get("deleted")
        ]
        return {"ok": True, "messages": thread[: int(params.get("limit") or 1000)]}

    def m_views_open(self, params, user, is_admin):
        """A modal: its trigger lasts 3 s after the press ("expired…" ids play a late one)."""
        trigger, view = params.get("trigger_id", ""), params.get("view")
        if not trigger or trigger.startswith("expired"):
            return {"ok": False, "error": "expired_trigger_id"}
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal":
            return {"ok": False, "error": "invalid_arguments"}
        self.server.views.append(view)
        return {"ok": True, "view": {"id": f"V{len(self.server.views)}", **view}}

    def m_files_info(self, params, user, is_admin):
        file = self.server.files.get(params.get("file", ""))
        if file is None or file["deleted"]:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": dict(file["info"])}
