"""The API schema and its docs page work offline (Swagger UI from the sidecar, no CDN)."""

import re

from django.urls import reverse


def test_the_schema_lists_the_review_endpoints(client, moderator):
    client.force_login(moderator)
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/review/claim" in paths
    assert "/api/v1/review/items/{item_uuid}/decision" in paths


def test_the_docs_page_loads_its_assets_from_our_static_files(client, moderator):
    client.force_login(moderator)
    page = client.get(reverse("api-docs")).content.decode()
    assert "swagger-ui" in page and "/static/drf_spectacular_sidecar/" in page
    # No asset from another host (a random token may contain "cdn": look at addresses).
    assert not re.findall(r"(?:src|href)=[\"']?(?:https?:)?//", page), "an external asset"
    assert not re.search(r"cdn\.|jsdelivr|unpkg|cdnjs", page)
