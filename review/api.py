"""The review actions for tools: the same service functions as the pages."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from uploads.models import MediaItem

from . import queue
from .serializers import (
    ClaimSerializer,
    DecisionInputSerializer,
    DecisionSerializer,
    ReleaseSerializer,
    ReviewItemSerializer,
)


class IsModerator(permissions.BasePermission):
    message = "Only moderators can review items."

    def has_permission(self, request, view):
        return queue.is_moderator(request.user)


class ReviewAPIView(APIView):
    """Maps the service's refusals: bad input 400, not yours 409, unknown item 404."""

    permission_classes = [permissions.IsAuthenticated, IsModerator]

    def handle_exception(self, exc):
        if isinstance(exc, queue.ClaimConflict):
            return Response({"code": "claim_conflict", "detail": str(exc)}, status=409)
        if isinstance(exc, DjangoValidationError):
            return Response({"code": "invalid", "detail": " ".join(exc.messages)}, status=400)
        if isinstance(exc, MediaItem.DoesNotExist):
            return Response({"detail": "No such item."}, status=404)
        if isinstance(exc, DjangoPermissionDenied):
            return Response({"detail": str(exc) or IsModerator.message}, status=403)
        return super().handle_exception(exc)


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ClaimAPI(ReviewAPIView):
    def post(self, request):
        data = _valid(ClaimSerializer, request)
        claimed = queue.claim_items(request.user, data.get("count"))
        entries = queue.claimed_entries(request.user).filter(pk__in=[e.pk for e in claimed])
        return Response({"items": ReviewItemSerializer(entries, many=True).data})


class ReleaseAPI(ReviewAPIView):
    def post(self, request):
        data = _valid(ReleaseSerializer, request)
        released = queue.release_claims(request.user, data.get("items"))
        return Response({"released": released})


class HeartbeatAPI(ReviewAPIView):
    def post(self, request):
        entries = queue.heartbeat(request.user)
        return Response({"items": ReviewItemSerializer(entries, many=True).data})


class StatsAPI(ReviewAPIView):
    def get(self, request):
        return Response(queue.pending_stats(request.user))


class DecisionAPI(ReviewAPIView):
    def post(self, request, item_uuid):
        data = _valid(DecisionInputSerializer, request)
        item = queue.item_for_moderator(request.user, item_uuid)
        decisions = queue.record_decision(
            request.user, item, data["decision"], data.get("reason", "")
        )
        return Response({"decisions": DecisionSerializer(decisions, many=True).data})


class OverrideAPI(ReviewAPIView):
    def post(self, request, item_uuid):
        data = _valid(DecisionInputSerializer, request)
        item = queue.item_for_moderator(request.user, item_uuid)
        record = queue.override_decision(
            request.user, item, data["decision"], data.get("reason", "")
        )
        return Response(
            {"decision": DecisionSerializer(record).data}, status=status.HTTP_201_CREATED
        )
