"""Slack's requests (events, button presses) and the OAuth install; thin: chatbot.receipt
and chatbot.installs do the work."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from moderation_site.errors import json_error

from . import installs, receipt, tasks

log = logging.getLogger(__name__)


def _answer(result: receipt.Receipt):
    if result.code:
        return json_error(result.status, result.code, result.detail)
    if result.body is not None:
        return JsonResponse(result.body, status=result.status)
    return HttpResponse(status=result.status)


@csrf_exempt  # Slack signs its requests instead (chatbot.receipt.verified)
@require_POST
def events(request):
    return _answer(receipt.receive_event(request.body, request.headers))


@csrf_exempt
@require_POST
def interactions(request):
    result = receipt.receive_interaction(request.body, request.headers)
    if result.code:
        return _answer(result)
    try:
        tasks.handle_interaction.delay(result.body["team_id"], result.body["payload"])
    except Exception:  # the broker is down: Slack shows the presser an error, nothing half-done
        log.exception("could not queue a slack interaction")
        return json_error(503, "unavailable", "The bot cannot take this now; try again soon.")
    return HttpResponse(status=200)


def _redirect_uri(request) -> str:
    return request.build_absolute_uri(reverse("chatbot:oauth-callback"))


@require_GET
@permission_required("chatbot.add_workspace", raise_exception=True)
def install(request):
    if not settings.SLACK_CLIENT_ID or not settings.SLACK_CLIENT_SECRET:
        return json_error(
            409, "not_configured", "Set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install."
        )
    return redirect(installs.authorize_url(request, _redirect_uri(request)))


@require_GET
@permission_required("chatbot.add_workspace", raise_exception=True)
def oauth_callback(request):
    try:
        installs.check_state(request, request.GET.get("state", ""))
        if request.GET.get("error"):
            raise installs.InstallFailed(f"Slack says: {request.GET['error'][:100]}.")
        workspace = installs.finish_install(
            request.GET.get("code", "")[:500], _redirect_uri(request), request.user
        )
    except installs.InstallFailed as exc:
        return json_error(400, "install_failed", str(exc))
    messages.success(request, f"The bot is installed in {workspace}.")
    return redirect("admin:chatbot_workspace_change", workspace.pk)
