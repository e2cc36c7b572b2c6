"""The one error shape, described once for the whole OpenAPI schema.

Every operation can answer 400 (bad input, with "fields"), 401, 403, 404, 405, 409, 413,
415 and 429 in the shape of moderation_site.errors; views document their success bodies and
the errors with a meaning of their own, and this hook adds the rest, so that clients (and
schemathesis in CI) find every answer the API gives described.
"""

from .errors import STATUS_DEFAULTS

ERROR = "Error"
ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 429)
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of every API answer (moderation_site.errors).",
    "properties": {
        "code": {"type": "string", "description": "A stable code, e.g. not_found."},
        "detail": {"type": "string", "description": "A sentence a person can act on."},
        "fields": {
            "type": "object",
            "description": "Per input field, what is wrong with it (validation errors).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["code", "detail"],
}
METHODS = ("get", "put", "post", "delete", "patch")


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error component and, on every operation,
    each error status it does not document itself."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR}"}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in ERROR_STATUSES:
                responses.setdefault(
                    str(status),
                    {
                        "description": STATUS_DEFAULTS[status][1],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
            if "429" in responses:
                responses["429"].setdefault(
                    "headers",
                    {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
                )
    return result
