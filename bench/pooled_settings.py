"""The project's settings with PostgreSQL connections pooled in each process (Django's
``OPTIONS["pool"]``, which needs the psycopg-pool package), as bench/api_lookup.py runs
its "pooled" servers. Without a pool every request opens its own connection
(CONN_MAX_AGE does not help under ASGI: each request's view runs in a new thread): ~8 ms
on this machine, more than the rest of a lookup."""

from moderation_site.settings import *  # noqa: F403
from moderation_site.settings import DATABASES

if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 8}
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # required with a pool
