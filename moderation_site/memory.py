"""Freed memory back to the system after each request and each task.

A decoded picture at the pixel cap is 150-200 MB, freed when the request or the analysis
ends; but glibc keeps what a thread freed in that thread's heap, and each request's view
runs in a thread to itself (lent to it: moderation_site.asgi). Measured under the web
server (bench/hostile.py): after a 49 Mpx RGBA upload the process stayed at 420-490 MB
instead of its 230 MB, and the next large picture was decoded on top of that.
``malloc_trim(0)`` hands the free pages of every heap back (a millisecond or two); on other
C libraries this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_name = ctypes.util.find_library("c")
try:
    _malloc_trim = ctypes.CDLL(_name).malloc_trim if _name else None
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def release_freed_memory(*args, **kwargs) -> None:
    """Usable as a signal receiver (Django's request_finished, Celery's task_postrun)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
