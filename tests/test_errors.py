"""One error shape everywhere: {"code", "detail"} (+ "fields" for validation).

API paths and JSON requests get it for every error status; browsers keep HTML pages.
This module doubles as a small urlconf (the `test_urls` fixture) for crashes and refusals
the project's own views cannot be made to produce.
"""

import json
import logging
import pickle
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    ObjectDoesNotExist,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponseForbidden, JsonResponse
from django.test import Client
from django.urls import Resolver404, path
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from moderation_site import errors
from moderation_site.errors import (
    CSRF_DETAIL,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotAuthenticated,
    NotFound,
    Throttled,
    TooLarge,
    describe,
    error_body,
    error_response,
    exception_handler,
    json_error,
)
from moderation_site.http import wants_json
from uploads.validation import RefusedUpload

JSON = {"HTTP_ACCEPT": "application/json"}
HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
SECRET = "hunter2-the-database-password"
SERVER_ERROR = {
    "code": "server_error",
    "detail": "Something went wrong on our side; please try again later.",
}


# A urlconf of views that fail on purpose (settings.ROOT_URLCONF = this module).


class CodedButUnknown(ValueError):
    """Has a code and a message, but is no DomainError: describe() must not guess."""

    code, message = "c", "m"


def IntakeRefusal(code, message):  # noqa: N802 - reads as the exception it makes
    """The intake's real refusal (a DomainError with its own code)."""
    return RefusedUpload(code, message)


def boom(request):
    raise RuntimeError(f"secret: {SECRET}")


def conflict(request):
    raise Conflict("Someone else holds this item.")


def invalid(request):
    raise DjangoValidationError({"name": ["Too short."]})


def missing(request):
    raise ObjectDoesNotExist(f"SecretModel matching query does not exist: {SECRET}")


def forbidden(request):
    raise DjangoPermissionDenied("Moderators only.")


def bare_forbidden(request):
    return HttpResponseForbidden("<h1>Forbidden</h1>")


def own_shape(request):
    return JsonResponse({"code": "claim_conflict", "detail": "Held by someone else."}, status=409)


class OpenAPIView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    raises: BaseException = RuntimeError("unset")

    def get(self, request):
        raise self.raises


urlpatterns = [
    path("api/boom", boom),
    path("page/boom", boom),
    path("api/conflict", conflict),
    path("page/conflict", conflict),
    path("api/invalid", invalid),
    path("page/invalid", invalid),
    path("api/missing", missing),
    path("api/forbidden", forbidden),
    path("page/forbidden", forbidden),
    path("page/bare-forbidden", bare_forbidden),
    path("api/own-shape", own_shape),
    path("api/drf/boom", OpenAPIView.as_view(raises=RuntimeError(SECRET))),
    path(
        "api/drf/refusal",
        OpenAPIView.as_view(raises=IntakeRefusal("too_small", "The image is too small.")),
    ),
    path("api/drf/domain", OpenAPIView.as_view(raises=Forbidden("Only moderators here."))),
    path("api/drf/not-found", OpenAPIView.as_view(raises=drf.NotFound())),
]
handler400 = "moderation_site.errors.handler400"
handler403 = "moderation_site.errors.handler403"
handler404 = "moderation_site.errors.handler404"
handler500 = "moderation_site.errors.handler500"


@pytest.fixture
def test_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def crashing_client(client):
    client.raise_request_exception = False  # answer like production instead of re-raising
    return client


def is_json(response) -> bool:
    return response["Content-Type"].split(";")[0] == "application/json"


def is_html(response) -> bool:
    return response["Content-Type"].startswith("text/html")


# describe(): the one table.

DESCRIBED = [
    (DomainError(), 400, {"code": "invalid", "detail": "The request is not valid."}),
    (
        Invalid("Check the name.", fields={"name": "Too short."}),
        400,
        {"code": "invalid", "detail": "Check the name.", "fields": {"name": ["Too short."]}},
    ),
    (NotAuthenticated(), 401, {"code": "not_authenticated", "detail": "Sign in first."}),
    (
        Forbidden(),
        403,
        {"code": "forbidden", "detail": "You do not have permission to do this."},
    ),
    (NotFound("No such item."), 404, {"code": "not_found", "detail": "No such item."}),
    (
        Conflict("Held by someone else.", code="claim_conflict"),
        409,
        {"code": "claim_conflict", "detail": "Held by someone else."},
    ),
    (TooLarge(), 413, {"code": "too_large", "detail": "The request is too large."}),
    (
        Throttled(wait=30),
        429,
        {"code": "throttled", "detail": "Too many requests; wait a moment and try again."},
    ),
    (DjangoValidationError(["One.", "Two."]), 400, {"code": "invalid", "detail": "One. Two."}),
    (
        DjangoValidationError({"name": ["Too short."], "__all__": ["Pick one."]}),
        400,
        {
            "code": "invalid",
            "detail": "Too short. Pick one.",
            "fields": {"name": ["Too short."], "__all__": ["Pick one."]},
        },
    ),
    (
        DjangoPermissionDenied(),
        403,
        {"code": "forbidden", "detail": "You do not have permission to do this."},
    ),
    (
        DjangoPermissionDenied("Moderators only."),
        403,
        {"code": "forbidden", "detail": "Moderators only."},
    ),
    (Http404("No such item."), 404, {"code": "not_found", "detail": "No such item."}),
    (
        Resolver404({"path": "secret/", "tried": [["api/"]]}),
        404,
        {"code": "not_found", "detail": "Not found."},
    ),
    (ObjectDoesNotExist(SECRET), 404, {"code": "not_found", "detail": "Not found."}),
    (
        RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."),
        413,
        {"code": "too_large", "detail": "The request is too large."},
    ),
    (
        SuspiciousOperation(SECRET),
        400,
        {"code": "bad_request", "detail": "The request could not be understood."},
    ),
    (
        DisallowedHost(f"Invalid HTTP_HOST header: '{SECRET}'."),
        400,
        {"code": "bad_request", "detail": "The request could not be understood."},
    ),
    (
        BadRequest("Page must be a number."),
        400,
        {"code": "bad_request", "detail": "Page must be a number."},
    ),
    (
        drf.NotAuthenticated(),
        401,
        {"code": "not_authenticated", "detail": "Authentication credentials were not provided."},
    ),
    (
        drf.PermissionDenied("Only moderators can review items."),
        403,
        {"code": "permission_denied", "detail": "Only moderators can review items."},
    ),
    (
        drf.PermissionDenied("Your account is banned.", code="banned"),
        403,
        {"code": "banned", "detail": "Your account is banned."},
    ),
    (drf.NotFound(), 404, {"code": "not_found", "detail": "Not found."}),
    (
        drf.MethodNotAllowed("GET"),
        405,
        {"code": "method_not_allowed", "detail": 'Method "GET" not allowed.'},
    ),
    (drf.ParseError(), 400, {"code": "parse_error", "detail": "Malformed request."}),
    (
        drf.Throttled(wait=42),
        429,
        {"code": "throttled", "detail": "Request was throttled. Expected available in 42 seconds."},
    ),
    (drf.ValidationError("Pick one."), 400, {"code": "invalid", "detail": "Pick one."}),
    (
        drf.ValidationError({"items": [{}, {"name": ["Required."]}], "non_field_errors": ["No."]}),
        400,
        {
            "code": "invalid",
            "detail": "items.1.name: Required. No.",
            "fields": {"items.1.name": ["Required."], "non_field_errors": ["No."]},
        },
    ),
]


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    DESCRIBED,
    ids=[type(e).__module__ + "." + type(e).__name__ for e, *_ in DESCRIBED],
)
def test_describe_maps_each_known_exception(exc, status, body):
    assert describe(exc) == (status, body)


def test_describe_hides_a_model_does_not_exist_text(db):
    exc = get_user_model().DoesNotExist("User matching query does not exist.")
    assert describe(exc) == (404, {"code": "not_found", "detail": "Not found."})


def test_describe_turns_a_serializer_error_into_fields_and_a_sentence():
    class Claim(serializers.Serializer):
        count = serializers.IntegerField()
        reason = serializers.CharField()

    serializer = Claim(data={"count": "many"})
    assert not serializer.is_valid()
    status, body = describe(drf.ValidationError(serializer.errors))
    assert status == 400
    assert body == {
        "code": "invalid",
        "detail": "count: A valid integer is required. reason: This field is required.",
        "fields": {
            "count": ["A valid integer is required."],
            "reason": ["This field is required."],
        },
    }
    assert all(type(m) is str for ms in body["fields"].values() for m in ms)  # not ErrorDetail


@pytest.mark.parametrize(
    "exc", [ValueError("x"), RuntimeError(SECRET), KeyError("k"), CodedButUnknown("m")]
)
def test_describe_knows_nothing_else(exc):
    assert describe(exc) is None


def test_domain_errors_read_as_their_detail_and_survive_pickling():
    exc = Conflict("Held by someone else.", code="claim_conflict", fields={"item": ["Held."]})
    assert str(exc) == "Held by someone else." == exc.detail
    assert (exc.status, exc.code) == (409, "claim_conflict")
    again = pickle.loads(pickle.dumps(exc))
    assert (type(again), again.detail, again.code, again.fields) == (
        Conflict,
        "Held by someone else.",
        "claim_conflict",
        {"item": ["Held."]},
    )
    assert str(NotFound()) == "Not found."
    assert Throttled(wait=5).wait == 5
    assert issubclass(TooLarge, DomainError) and TooLarge.status == 413


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (Invalid, 400, "invalid"),
        (NotAuthenticated, 401, "not_authenticated"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (TooLarge, 413, "too_large"),
        (Throttled, 429, "throttled"),
    ],
)
def test_each_domain_error_has_its_status_code_and_a_sentence(cls, status, code):
    exc = cls()
    assert (exc.status, exc.code) == (status, code)
    assert exc.detail == cls.default_detail and exc.detail.endswith(".")


def test_error_body_is_the_one_shape():
    assert error_body("invalid", "Bad.") == {"code": "invalid", "detail": "Bad."}
    assert error_body("invalid", "Bad.", {"name": "Short."}, hint="x") == {
        "code": "invalid",
        "detail": "Bad.",
        "fields": {"name": ["Short."]},
        "hint": "x",
    }


def test_json_error_and_error_response():
    response = json_error(409, "claim_conflict", "Held.")
    assert response.status_code == 409 and json.loads(response.content) == {
        "code": "claim_conflict",
        "detail": "Held.",
    }
    response = error_response(404)
    assert response.status_code == 404
    assert json.loads(response.content) == {"code": "not_found", "detail": "Not found."}
    response = error_response(Throttled("Slow down.", wait=7))
    assert response.status_code == 429 and response["Retry-After"] == "7"
    assert json.loads(response.content) == {"code": "throttled", "detail": "Slow down."}
    response = error_response(RuntimeError(SECRET))
    assert response.status_code == 500 and json.loads(response.content) == SERVER_ERROR


def test_the_drf_handler_answers_intake_refusals_with_their_code():
    response = exception_handler(IntakeRefusal("too_small", "The image is too small."), {})
    assert response.status_code == 400
    assert response.data == {"code": "too_small", "detail": "The image is too small."}
    too_large = exception_handler(IntakeRefusal("too_large", "The file is 30 MB."), {})
    assert too_large.status_code == 413 and too_large.data["code"] == "too_large"
    assert exception_handler(RuntimeError(SECRET), {}) is None


@pytest.mark.parametrize(
    ("url", "headers", "expected"),
    [
        ("/api/v1/review/stats", {}, True),
        ("/api", {}, True),
        ("/uploads/", {}, False),
        ("/apiary/", {}, False),
        ("/uploads/", JSON, True),
        ("/uploads/", {"HTTP_ACCEPT": "application/json, text/plain, */*"}, True),
        ("/uploads/", HTML, False),
    ],
)
def test_wants_json(rf, url, headers, expected):
    assert wants_json(rf.get(url, **headers)) is expected


def test_the_settings_wire_it_in(settings):
    assert settings.MIDDLEWARE[:2] == [
        "django.middleware.security.SecurityMiddleware",
        "moderation_site.errors.JsonErrorMiddleware",
    ]
    assert settings.CSRF_FAILURE_VIEW == "moderation_site.errors.csrf_failure"
    assert (
        settings.REST_FRAMEWORK["EXCEPTION_HANDLER"] == "moderation_site.errors.exception_handler"
    )


# 404


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/review/nope")
    assert response.status_code == 404 and is_json(response)
    assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_an_unknown_page_asked_for_json_is_a_json_404(client):
    response = client.get("/no-such-page/", **JSON)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_a_browser_still_gets_an_html_404_page(client, db):
    response = client.get("/no-such-page/", **HTML)
    assert response.status_code == 404 and is_html(response)
    page = response.content.decode()
    assert "Page not found" in page and "There is nothing at this address." in page
    assert 'class="brand"' in page  # extends base.html
    assert "no-such-page" not in page  # the resolver's details stay out


# 401 / 403 / 405 from DRF


def test_an_anonymous_api_call_is_a_401_in_the_shape(client):
    response = client.post("/api/v1/review/claim", {"count": 1}, content_type="application/json")
    assert response.status_code == 401  # the token authenticator asks for credentials
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }


def test_the_api_answers_json_even_to_a_browser(client):
    response = client.get("/api/v1/review/stats", **HTML)  # would be the browsable API
    assert response.status_code == 401 and is_json(response)
    assert response.json() == {
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }


def test_the_wrong_method_on_the_api_is_a_405_with_allow(client, moderator):
    client.force_login(moderator)
    response = client.get("/api/v1/review/claim")
    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": 'Method "GET" not allowed.'}
    assert "POST" in [m.strip() for m in response["Allow"].split(",")]


def test_a_non_moderator_is_refused_in_the_shape(client, outsider):
    client.force_login(outsider)
    response = client.get("/api/v1/review/stats")
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "Only moderators can review items.",
    }


# 400 validation


def test_a_bad_decision_is_a_400_with_fields(client, moderator):
    client.force_login(moderator)
    response = client.post(
        f"/api/v1/review/items/{uuid.uuid4()}/decision",
        {"decision": "maybe"},
        content_type="application/json",
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "detail", "fields"}
    assert body["code"] == "invalid"
    assert list(body["fields"]) == ["decision"]
    assert body["fields"]["decision"] and all(
        isinstance(m, str) for m in body["fields"]["decision"]
    )
    assert body["detail"] == "decision: " + body["fields"]["decision"][0]


# Page views: require_POST, login_required, CSRF


def test_require_post_answers_a_json_405_with_allow(client, uploader):
    client.force_login(uploader)
    response = client.get("/uploads/submit/", **JSON)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json() == {
        "code": "method_not_allowed",
        "detail": "GET is not allowed here; use POST.",
    }


def test_require_post_leaves_browsers_alone(client, uploader):
    client.force_login(uploader)
    response = client.get("/uploads/submit/", **HTML)
    assert response.status_code == 405 and not is_json(response)


def test_a_login_redirect_is_a_401_for_json_clients(client, db):
    response = client.get("/uploads/submit/", **JSON)
    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Sign in first."}
    response = client.get("/uploads/feed/", **JSON)
    assert response.status_code == 401


def test_browsers_are_still_sent_to_log_in(client, db):
    response = client.get("/uploads/feed/", **HTML)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_logging_out_still_redirects_json_clients(client, uploader):
    client.force_login(uploader)
    response = client.post("/accounts/logout/", **JSON)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_a_csrf_failure_is_a_json_403(uploader):
    client = Client(enforce_csrf_checks=True)
    client.force_login(uploader)
    response = client.post("/uploads/submit/", {"url": "https://example.org/a.jpg"}, **JSON)
    assert response.status_code == 403
    assert response.json() == {"code": "csrf_failed", "detail": CSRF_DETAIL}


def test_a_csrf_failure_is_an_html_page_for_browsers(uploader):
    client = Client(enforce_csrf_checks=True)
    client.force_login(uploader)
    response = client.post("/uploads/submit/", {"url": "https://example.org/a.jpg"}, **HTML)
    assert response.status_code == 403 and is_html(response)
    assert CSRF_DETAIL in response.content.decode()


def test_a_page_permission_denied_keeps_its_html_page_and_sentence(client, outsider):
    client.force_login(outsider)
    response = client.get("/review/", **HTML)
    assert response.status_code == 403 and is_html(response)
    page = response.content.decode()
    assert "Not allowed" in page and "Only moderators can review items." in page


# 413


def test_an_api_body_over_the_limit_is_a_json_413(client, moderator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(moderator)
    body = json.dumps({"count": 1, "padding": "x" * 2000})
    response = client.post("/api/v1/review/claim", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "detail": "The request is too large."}


def test_a_form_over_the_limit_is_a_413_for_json_and_for_browsers(client, uploader, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(uploader)
    form = "url=" + "x" * 2000
    kind = "application/x-www-form-urlencoded"
    response = client.post("/uploads/submit/", form, content_type=kind, **JSON)
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "detail": "The request is too large."}
    response = client.post("/uploads/submit/", form, content_type=kind, **HTML)
    assert response.status_code == 413 and is_html(response)
    assert "The request is too large." in response.content.decode()


# 429


@pytest.fixture
def tiny_throttle(monkeypatch):
    # The rates are read into the throttle class at import: patch them there.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "2/minute"})
    cache.clear()
    yield
    cache.clear()


def test_throttling_is_a_429_with_retry_after(client, moderator, tiny_throttle):
    client.force_login(moderator)
    assert [client.get("/api/v1/review/stats").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/review/stats")
    assert response.status_code == 429
    body = response.json()
    assert set(body) == {"code", "detail"} and body["code"] == "throttled"
    assert body["detail"].startswith("Request was throttled. Expected available in ")
    assert 0 < int(response["Retry-After"]) <= 60


# 500 and refusals raised in views (the urlconf above)


def test_a_crash_under_api_is_a_json_500_that_says_nothing(crashing_client, test_urls, caplog):
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = crashing_client.get("/api/boom")
    assert response.status_code == 500 and is_json(response)
    assert response.json() == SERVER_ERROR
    assert SECRET not in response.content.decode()
    logged = [r for r in caplog.records if r.name == "django.request" and r.levelno >= 40]
    assert len(logged) == 1 and logged[0].exc_info  # Django's log, once, with the traceback


def test_a_crash_in_a_drf_view_is_a_json_500(crashing_client, test_urls):
    response = crashing_client.get("/api/drf/boom")
    assert response.status_code == 500
    assert response.json() == SERVER_ERROR


def test_a_crash_of_a_page_is_an_html_500_for_browsers(crashing_client, test_urls):
    response = crashing_client.get("/page/boom", **HTML)
    assert response.status_code == 500 and is_html(response)
    page = response.content.decode()
    assert "Something went wrong" in page and SECRET not in page


def test_a_crash_of_a_page_asked_for_json_is_json(crashing_client, test_urls):
    response = crashing_client.get("/page/boom", **JSON)
    assert response.status_code == 500 and response.json() == SERVER_ERROR


@pytest.mark.parametrize(
    ("url", "status", "body"),
    [
        ("/api/conflict", 409, {"code": "conflict", "detail": "Someone else holds this item."}),
        (
            "/api/invalid",
            400,
            {"code": "invalid", "detail": "Too short.", "fields": {"name": ["Too short."]}},
        ),
        ("/api/missing", 404, {"code": "not_found", "detail": "Not found."}),
        ("/api/forbidden", 403, {"code": "forbidden", "detail": "Moderators only."}),
        ("/api/drf/domain", 403, {"code": "forbidden", "detail": "Only moderators here."}),
        ("/api/drf/refusal", 400, {"code": "too_small", "detail": "The image is too small."}),
        ("/api/drf/not-found", 404, {"code": "not_found", "detail": "Not found."}),
        (
            "/page/bare-forbidden",
            403,
            {"code": "forbidden", "detail": errors.STATUS_DEFAULTS[403][1]},
        ),
    ],
)
def test_refusals_raised_in_views_answer_the_shape(client, test_urls, url, status, body):
    response = client.get(url, **JSON)
    assert response.status_code == status and is_json(response)
    assert response.json() == body
    assert SECRET not in response.content.decode()


def test_a_json_error_of_a_view_is_left_as_it_is(client, test_urls):
    response = client.get("/api/own-shape")
    assert response.status_code == 409
    assert response.json() == {"code": "claim_conflict", "detail": "Held by someone else."}


def test_a_bare_forbidden_is_left_alone_for_browsers(client, test_urls):
    response = client.get("/page/bare-forbidden", **HTML)
    assert response.status_code == 403 and response.content == b"<h1>Forbidden</h1>"


def test_a_domain_error_escaping_a_page_gets_its_status_and_page(client, test_urls):
    response = client.get("/page/conflict", **HTML)
    assert response.status_code == 409 and is_html(response)
    assert "Someone else holds this item." in response.content.decode()


def test_a_page_permission_denied_uses_handler403(client, test_urls):
    response = client.get("/page/forbidden", **HTML)
    assert response.status_code == 403 and is_html(response)
    assert "Moderators only." in response.content.decode()


def test_a_validation_error_escaping_a_page_is_still_a_500_for_browsers(crashing_client, test_urls):
    response = crashing_client.get("/page/invalid", **HTML)
    assert response.status_code == 500 and is_html(response)
