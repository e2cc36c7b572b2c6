"""Structured logs: the item and request ids on every line of an analysis, and a JSON
format for log collectors.

`log_context(item_id=..., request_id=...)` binds the ids in a contextvar for the duration
of a block (review.pipeline wraps each analysis in it; a Celery task, a thread or an
asyncio task each see their own); `ContextFilter`, installed on the console handler by
settings.LOGGING, copies them onto every record, so a library's line (a provider's HTTP
client, the storage backend) carries them too. `LOG_FORMAT=json` switches the console to
one JSON object a line (`JsonFormatter`); the default is text with the ids in brackets.
"""

import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_context: ContextVar[dict] = ContextVar("log_context", default={})  # noqa: B039 (never mutated)

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [item=%(item_id)s request=%(request_id)s] %(message)s"
)


@contextmanager
def log_context(**ids):
    """Every log line inside the block carries these ids (None values are left out)."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record ("-" when none is bound)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        record.item_id = bound.get("item_id", "-")
        record.request_id = bound.get("request_id", "-")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the bound
    ids, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("item_id", "request_id"):
            value = getattr(record, key, "-")
            if value != "-":
                entry[key] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
