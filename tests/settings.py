"""The settings the suite runs with: the project's, as a plain-http instance with DEBUG off.

DEBUG off refuses to start without SECRET_KEY, and its defaults are a deployment's behind
TLS (SSL redirect, secure-only cookies), which the test client and the servers the tests
start on loopback do not speak. So, unless the environment says otherwise: a random key per
run, and plain http. They go into os.environ, so that a server a test starts in a subprocess
(it inherits DJANGO_SETTINGS_MODULE=tests.settings too) signs and reads with the same key.
`tests/test_deploy.py` checks the production settings themselves, in subprocesses.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", "tests-" + secrets.token_urlsafe(50))
for _name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(_name, "false")

from moderation_site.settings import *  # noqa: E402, F403
