"""One error shape for the whole site: ``{"code": "...", "detail": "..."}``.

Validation errors add ``"fields": {"name": ["message", ...]}``. ``describe`` is the one table
from exceptions to (status, body); the DRF exception handler, the Django error handlers
(handler400/403/404/500, the CSRF failure view) and ``JsonErrorMiddleware`` all answer
through it. API paths and requests asking for JSON get JSON; browsers get HTML pages
(templates/errors/) with the same status.

A base layer: it imports Django and DRF only, never the apps.
"""

import json
import logging
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core import exceptions as django_exceptions
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware import common
from django.shortcuts import resolve_url
from django.template import TemplateDoesNotExist, loader
from django.urls import NoReverseMatch
from django.utils.encoding import escape_uri_path
from django.utils.html import escape
from rest_framework import exceptions as drf_exceptions

from .http import wants_json

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "Invalid",
    "JsonErrorMiddleware",
    "NotAuthenticated",
    "NotFound",
    "Throttled",
    "TooLarge",
    "csrf_failure",
    "describe",
    "error_body",
    "error_response",
    "exception_handler",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "json_error",
    "status_defaults",
]

# The generic code and sentence of each status, for answers that carry nothing better.
STATUS_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "Sign in first."),
    403: ("forbidden", "You do not have permission to do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "This conflicts with the current state; reload and try again."),
    413: ("too_large", "The request is too large."),
    415: ("unsupported_media_type", "This content type is not supported here."),
    429: ("throttled", "Too many requests; wait a moment and try again."),
    500: ("server_error", "Something went wrong on our side; please try again later."),
    503: ("unavailable", "The service is unavailable; please try again later."),
}

# The database unreachable (restarting, failing over, out of connections): a 503 that says
# so, rather than a 500 storm; each request opens a fresh connection, so the service
# recovers by itself when the database is back (tests/test_faults.py).
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_DOWN = "The database cannot be reached at the moment; please try again in a few seconds."
DATABASE_RETRY_AFTER_S = 5

CSRF_DETAIL = "The form expired or came from another site; reload the page and try again."
SIGN_IN_FIRST = STATUS_DEFAULTS[401][1]

# Headings of the HTML error pages.
HEADINGS = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Slow down",
    500: "Something went wrong",
}

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NON_FIELD_KEYS = frozenset({"", "__all__", "non_field_errors"})


def status_defaults(status: int) -> tuple[str, str]:
    """(code, detail) for a bare status: the table above, else the status's own phrase."""
    if status in STATUS_DEFAULTS:
        return STATUS_DEFAULTS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ("server_error" if status >= 500 else "error"), f"{phrase}."


# Exceptions the services raise. The answer says what the exception says.


class DomainError(Exception):
    """A refusal meant for a person: the status, a stable code and a sentence."""

    status = 400
    code = "invalid"
    default_detail = "The request is not valid."

    def __init__(self, detail: str = "", *, code: str | None = None, fields: dict | None = None):
        self.detail = str(detail) if detail else self.default_detail
        self.code = code or type(self).code
        self.fields = fields
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail

    def __reduce__(self):
        # Pickles (Celery results, caches) keep the code and fields, not only the args.
        return (type(self), (self.detail,), self.__dict__)


class Invalid(DomainError):
    status = 400
    code = "invalid"
    default_detail = "Some of the values are not valid."


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"
    default_detail = SIGN_IN_FIRST


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    default_detail = STATUS_DEFAULTS[403][1]


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_detail = STATUS_DEFAULTS[404][1]


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_detail = STATUS_DEFAULTS[409][1]


class TooLarge(DomainError):
    status = 413
    code = "too_large"
    default_detail = STATUS_DEFAULTS[413][1]


class Throttled(DomainError):
    """``wait`` (seconds), when known, becomes the Retry-After header."""

    status = 429
    code = "throttled"
    default_detail = STATUS_DEFAULTS[429][1]

    def __init__(
        self,
        detail: str = "",
        *,
        wait: int | None = None,
        code: str | None = None,
        fields: dict | None = None,
    ):
        super().__init__(detail, code=code, fields=fields)
        self.wait = wait


# The shape and the table.


def _flatten(errors, prefix: str = "", out: dict | None = None) -> dict[str, list[str]]:
    """Nested error structures (DRF, Django) as {"field" or "parent.0.child": [messages]}."""
    out = {} if out is None else out
    if isinstance(errors, dict):
        for key, value in errors.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(errors, (list, tuple)):
        for index, value in enumerate(errors):
            if isinstance(value, (dict, list, tuple)):
                _flatten(value, f"{prefix}.{index}" if prefix else str(index), out)
            else:
                out.setdefault(prefix, []).append(str(value))
    elif errors is not None:
        out.setdefault(prefix, []).append(str(errors))
    return out


def _sentence(errors) -> str:
    """A readable sentence from the first message of each field: "count: A valid integer..."."""
    if not isinstance(errors, dict):
        return " ".join(m for messages in _flatten(errors).values() for m in messages)
    parts = []
    for key, messages in _flatten(errors).items():
        if messages:
            parts.append(messages[0] if key in _NON_FIELD_KEYS else f"{key}: {messages[0]}")
    return " ".join(parts)


def error_body(code: str, detail: str, fields: dict | None = None, **extra) -> dict:
    """The one shape: {"code", "detail"}, "fields" when given, then any extra keys."""
    body = {"code": str(code), "detail": str(detail)}
    if fields:
        body["fields"] = _flatten(fields)
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


def _http404_detail(exc: Http404) -> str:
    # The resolver's Resolver404 carries a dict (path, patterns tried): never show it.
    message = exc.args[0] if exc.args else ""
    return message if isinstance(message, str) and message else NotFound.default_detail


def _describe_drf(exc: drf_exceptions.APIException) -> tuple[int, dict]:
    if isinstance(exc, drf_exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else None
        detail = _sentence(exc.detail) or Invalid.default_detail
        return exc.status_code, error_body("invalid", detail, fields)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc.detail, (dict, list)):
        fields = exc.detail if isinstance(exc.detail, dict) else None
        detail = _sentence(exc.detail) or str(exc.default_detail)
        return exc.status_code, error_body(code, detail, fields)
    return exc.status_code, error_body(code, str(exc.detail))


def describe(exc) -> tuple[int, dict] | None:
    """(status, body) for the exceptions we know how to explain; None for anything else."""
    if isinstance(exc, DomainError):
        return exc.status, error_body(exc.code, exc.detail, exc.fields)
    if isinstance(exc, drf_exceptions.APIException):
        return _describe_drf(exc)
    if isinstance(exc, django_exceptions.ValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else None
        detail = " ".join(str(m) for m in exc.messages) or Invalid.default_detail
        return 400, error_body("invalid", detail, fields)
    if isinstance(exc, django_exceptions.PermissionDenied):
        return 403, error_body("forbidden", str(exc) or Forbidden.default_detail)
    if isinstance(exc, Http404):
        return 404, error_body("not_found", _http404_detail(exc))
    if isinstance(exc, django_exceptions.ObjectDoesNotExist):
        # Its text names models and queries: never echoed.
        return 404, error_body("not_found", NotFound.default_detail)
    if isinstance(exc, django_exceptions.RequestDataTooBig):
        return 413, error_body("too_large", TooLarge.default_detail)
    if isinstance(exc, django_exceptions.BadRequest):
        return 400, error_body("bad_request", str(exc) or STATUS_DEFAULTS[400][1])
    if isinstance(exc, (django_exceptions.SuspiciousOperation, MultiPartParserError)):
        # Their text is for the security log, not for the caller.
        return 400, error_body("bad_request", STATUS_DEFAULTS[400][1])
    if isinstance(exc, DATABASE_ERRORS):
        return 503, error_body("unavailable", DATABASE_DOWN)  # never the driver's text
    return None


def _headers(exc) -> dict[str, str]:
    """Headers an exception asks for: WWW-Authenticate (DRF sets it), Retry-After."""
    headers = {}
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait and isinstance(exc, (drf_exceptions.Throttled, Throttled)):
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, DATABASE_ERRORS):
        headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return headers


def json_error(status: int, code: str, detail: str, **extra) -> JsonResponse:
    """A JSON answer in the shape; ``fields=`` and any extra keys go into the body."""
    return JsonResponse(error_body(code, detail, **extra), status=status)


def error_response(
    exc_or_status: BaseException | int,
    detail: str | None = None,
    *,
    code: str | None = None,
    **extra,
) -> JsonResponse:
    """A JSON answer from an exception (through ``describe``) or from a bare status.

    An exception ``describe`` does not know is a 500 that says nothing about it. ``detail``
    and ``code`` override what the exception or the status would say.
    """
    if isinstance(exc_or_status, int):
        default_code, default_detail = status_defaults(exc_or_status)
        return json_error(exc_or_status, code or default_code, detail or default_detail, **extra)
    described = describe(exc_or_status)
    status, body = described or (500, error_body(*STATUS_DEFAULTS[500]))
    if code:
        body["code"] = code
    if detail:
        body["detail"] = detail
    for key, value in extra.items():
        body.setdefault(key, value)
    response = JsonResponse(body, status=status)
    for header, value in _headers(exc_or_status).items():
        response[header] = value
    return response


# DRF: settings.REST_FRAMEWORK["EXCEPTION_HANDLER"].


def _log_suspicious(request, exc) -> None:
    # Django logs these itself when it handles them; DRF answers them here instead.
    logging.getLogger(f"django.security.{type(exc).__name__}").error(
        str(exc), extra={"status_code": 400, "request": request}
    )


def exception_handler(exc, context):
    """DRF's exception handler: the one shape, always rendered as JSON.

    Anything ``describe`` does not know is left to Django (a 500 through handler500).
    """
    from rest_framework.renderers import JSONRenderer
    from rest_framework.response import Response
    from rest_framework.views import set_rollback

    described = describe(exc)
    if described is None:
        return None
    request = context.get("request")
    if isinstance(exc, django_exceptions.SuspiciousOperation):
        _log_suspicious(getattr(request, "_request", request), exc)
    set_rollback()
    if request is not None:
        # Errors are JSON even when the browsable API was negotiated.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    status, body = described
    return Response(body, status=status, headers=_headers(exc))


# HTML pages for browsers.

_FALLBACK_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
    "</head><body><h1>{heading}</h1><p>{detail}</p></body></html>"
)


def _html(request, status: int, detail: str, template: str | None = None) -> HttpResponse:
    """An error page extending base.html; handler500 renders it without the request."""
    heading = HEADINGS.get(status) or status_defaults(status)[1].rstrip(".")
    names = ([template] if template else []) + [f"errors/{status}.html", "errors/error.html"]
    context = {"status": status, "heading": heading, "detail": detail}
    try:
        content = loader.render_to_string(names, context, request)
    except TemplateDoesNotExist:
        content = _FALLBACK_PAGE.format(heading=escape(heading), detail=escape(detail))
    return HttpResponse(content, status=status)


def _answer(request, status: int, body: dict, template: str | None = None) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(body, status=status)
    return _html(request, status, body["detail"], template)


def _handled(exception, status: int) -> dict:
    described = describe(exception) if exception is not None else None
    if described is not None and described[0] == status:
        return described[1]
    return error_body(*status_defaults(status))


def handler400(request, exception=None):
    """Bad requests and suspicious operations; a body over the size limit is a 413."""
    if isinstance(exception, django_exceptions.RequestDataTooBig):
        return _answer(request, 413, _handled(exception, 413))
    return _answer(request, 400, _handled(exception, 400))


def handler403(request, exception=None):
    return _answer(request, 403, _handled(exception, 403))


def handler404(request, exception=None):
    return _answer(request, 404, _handled(exception, 404))


def handler500(request, exception=None):
    """Never says what broke (Django's django.request logger has already logged it).

    The database down in a middleware (the session, the user) comes here too, not
    through process_exception: Django calls this inside its except block, so the
    exception is sys.exc_info()'s, and it is answered as the 503 it is."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        body = error_body("unavailable", DATABASE_DOWN)
        response = JsonResponse(body, status=503) if wants_json(request) else None
        response = response or _html(None, 503, DATABASE_DOWN)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    body = error_body(*STATUS_DEFAULTS[500])
    if wants_json(request):
        return JsonResponse(body, status=500)
    return _html(None, 500, body["detail"])


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW; Django logs the reason, the answer only says what to do."""
    extra = {"reason": reason} if settings.DEBUG and reason else {}
    if wants_json(request):
        return json_error(403, "csrf_failed", CSRF_DETAIL, **extra)
    return _html(request, 403, CSRF_DETAIL, "errors/403_csrf.html")


# The middleware: whatever a view or Django answers, JSON requests get the shape.


def _is_json(response) -> bool:
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _is_login_redirect(response) -> bool:
    """login_required's redirect (to LOGIN_URL with ?next=), not a logout's plain redirect."""
    if response.status_code not in _REDIRECTS:
        return False
    try:
        login = urlsplit(resolve_url(settings.LOGIN_URL))
    except NoReverseMatch:
        return False
    target = urlsplit(response.get("Location", ""))
    if target.path != login.path or (target.netloc and target.netloc != login.netloc):
        return False
    return REDIRECT_FIELD_NAME in parse_qs(target.query)


def _rewrite_as_json(request, response) -> None:
    """Replace a non-JSON error's body in place: headers (Allow...), cookies stay."""
    code, detail = status_defaults(response.status_code)
    if response.status_code == 405:
        allow = response.get("Allow", "")
        detail = f"{request.method} is not allowed here" + (f"; use {allow}." if allow else ".")
    response.content = json.dumps(error_body(code, detail), cls=DjangoJSONEncoder)
    response["Content-Type"] = "application/json"
    for header in ("Content-Disposition", "Content-Encoding", "Content-Language"):
        del response[header]
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))


class JsonErrorMiddleware:
    """For JSON requests: errors in the shape, and a login redirect becomes a 401.

    Place it right after SecurityMiddleware, so it sees every other middleware's answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 300 or not wants_json(request):
            return response
        if _is_login_redirect(response):
            answer = json_error(401, "not_authenticated", SIGN_IN_FIRST)
            answer.cookies = response.cookies
            return answer
        if response.status_code >= 400 and not response.streaming and not _is_json(response):
            _rewrite_as_json(request, response)
        return response

    def process_exception(self, request, exception):
        if isinstance(exception, django_exceptions.SuspiciousOperation):
            return None  # Django logs it to django.security and answers through handler400
        if wants_json(request):
            described = describe(exception)
            if described is None:
                return None  # a 500, through handler500
            status, body = described
            response = JsonResponse(body, status=status)
            for header, value in _headers(exception).items():
                response[header] = value
            return response
        if isinstance(exception, DomainError):
            # A deliberate refusal escaping a page view: its page, with its status.
            return _html(request, exception.status, exception.detail)
        return None


class CommonMiddleware(common.CommonMiddleware):
    """Django's, except for a POST (or PUT, PATCH, DELETE) to a page's address without its
    trailing slash. Django redirects it, and the client's repeat is a GET without the body;
    with DEBUG on (`make run`) it raises instead, which answered a 500. Here it is a 404 in
    the one error shape, naming the address to use. A GET is still redirected."""

    def process_response(self, request, response):
        if (
            response.status_code == 404
            and request.method not in ("GET", "HEAD")
            and self.should_redirect_with_slash(request)
        ):
            slashed = escape_uri_path(f"{request.path}/")
            return handler404(
                request, Http404(f"Not found: this address ends in a slash: {slashed}")
            )
        return super().process_response(request, response)
