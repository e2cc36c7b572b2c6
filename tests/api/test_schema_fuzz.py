"""Schemathesis against the OpenAPI schema: generated requests to every public endpoint
find no 5xx and no response that the schema does not describe.

Runs in-process against the WSGI application (the same Django views, middleware and error
handlers as under daphne), authenticated with a key holding every scope. Kept small per
operation so that `make test` stays quick; CI runs the same test.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import services
from api.models import SCOPES
from moderation_site.wsgi import application

# The schema view reads no database: loading it at collection is safe.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(
    path_regex="^/api/v1/(?!review/)"
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: a request's start and end must not close the connection that
    holds the test's transaction (PostgreSQL would lose it)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def key(db):
    client = services.create_client("fuzz", scopes=SCOPES, throttle_rate="100000/minute")
    return services.issue_key(client)[1]


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error_and_every_answer_as_documented(case, key):
    case.call_and_validate(
        headers={"Authorization": f"Api-Key {key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
