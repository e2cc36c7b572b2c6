"""Scopes: each API view names the scope it needs (``required_scope``); a key whose client
lacks it gets 403 saying which."""

from rest_framework.permissions import BasePermission

from .authentication import client_of


class HasScope(BasePermission):
    message = "This API key may not do that."

    def has_permission(self, request, view):
        client = client_of(request)
        if client is None:
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None:
            return True
        if not client.allows(scope):
            self.message = f"This API key's client lacks the “{scope}” scope."
            return False
        return True
