from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect

from moderation_site.errors import json_error
from moderation_site.http import wants_json

from .services import BANNED_MESSAGE, is_user_banned


class EndBannedSessionsMiddleware:
    """A ban ends the author's sessions at once: the next request of a banned user logs out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and is_user_banned(user):
            logout(request)
            messages.error(request, BANNED_MESSAGE)
            if wants_json(request):
                return json_error(403, "banned", BANNED_MESSAGE)
            return redirect("login")
        return self.get_response(request)
