"""How the OpenAPI schema describes API keys (imported at start-up by api.apps)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .authentication import KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <key>` (or the key alone in an `X-Api-Key` header). "
            "Keys are issued in admin, shown once.",
        }
