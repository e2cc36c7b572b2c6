"""`manage.py create_api_client`: a client and a working key, printed once."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import ApiClient, ApiKey


def run(*args) -> str:
    out = StringIO()
    call_command("create_api_client", *args, stdout=out)
    return out.getvalue()


def key_in(output: str) -> str:
    return output.split("Key (shown once, not stored): ", 1)[1].split()[0]


def test_the_printed_key_works_with_the_scopes_asked_for(db):
    output = run("partner", "--scopes", "lookup", "--rate", "10/minute")
    client = ApiClient.objects.get(name="partner")
    assert client.scopes == ["lookup"] and client.throttle_rate == "10/minute"
    answer = APIClient().get(reverse("api:me"), HTTP_X_API_KEY=key_in(output))
    assert answer.status_code == 200 and answer.json()["scopes"] == ["lookup"]
    assert key_in(output) not in {k.digest for k in ApiKey.objects.all()}


def test_a_second_run_adds_a_key_and_keeps_the_client(db):
    first, second = key_in(run("partner")), key_in(run("partner"))
    assert first != second and ApiClient.objects.count() == 1
    assert ApiKey.objects.count() == 2


def test_a_bad_rate_is_refused_with_a_message(db):
    with pytest.raises(CommandError, match="number per period"):
        run("partner", "--rate", "lots")
    assert not ApiClient.objects.exists()


def test_a_callback_url_that_is_not_http_is_refused_with_a_message(db):
    with pytest.raises(CommandError, match="http or https"):
        run("partner", "--callback-url", "ftp://files.example.com/hook")
    assert not ApiClient.objects.exists()
    assert not get_user_model().objects.filter(username="api:partner").exists()
