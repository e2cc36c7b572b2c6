"""API clients with keys, and a DRF client that sends them."""

import pytest
from rest_framework.test import APIClient

from api import services
from api.models import SCOPES


@pytest.fixture
def api_client_row(db):
    return services.create_client("partner", scopes=SCOPES)


@pytest.fixture
def api_key(api_client_row):
    _, raw = services.issue_key(api_client_row, "tests")
    return raw


@pytest.fixture
def api(api_key):
    """An HTTP client (DRF's test client) sending the key on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client
