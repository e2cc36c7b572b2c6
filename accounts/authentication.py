from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .services import is_user_banned


class ActiveAuthorTokenAuthentication(TokenAuthentication):
    """Token auth that stops a banned author's tokens at once (and accepts 'Bearer')."""

    keyword = "Token"

    def authenticate(self, request):
        auth = request.META.get("HTTP_AUTHORIZATION", "")
        if auth.startswith("Bearer "):
            request.META["HTTP_AUTHORIZATION"] = "Token " + auth[len("Bearer ") :]
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if is_user_banned(user):
            raise exceptions.PermissionDenied("Your account is banned; this token no longer works.")
        return user, token
