"""The review actions for tools: the same service functions as the pages."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.sessions import credential_of

from . import access, claims, counts, decisions
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
        return access.is_moderator(request.user)


class ReviewAPIView(APIView):
    """The service's refusals answer in the one shape (moderation_site.errors): bad input
    400, not a moderator 403, unknown item 404, not yours 409."""

    permission_classes = [permissions.IsAuthenticated, IsModerator]


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


ITEMS = inline_serializer("ReviewItems", {"items": ReviewItemSerializer(many=True)})
DECISIONS = inline_serializer("ReviewDecisions", {"decisions": DecisionSerializer(many=True)})
ERROR = inline_serializer(
    "ReviewError", {"code": serializers.CharField(), "detail": serializers.CharField()}
)


class ClaimAPI(ReviewAPIView):
    @extend_schema(request=ClaimSerializer, responses={200: ITEMS, 400: ERROR})
    def post(self, request):
        data = _valid(ClaimSerializer, request)
        claimed = claims.claim_items(request.user, data.get("count"), source=credential_of(request))
        entries = claims.claimed_entries(request.user).filter(pk__in=[e.pk for e in claimed])
        return Response({"items": ReviewItemSerializer(entries, many=True).data})


class ReleaseAPI(ReviewAPIView):
    @extend_schema(
        request=ReleaseSerializer,
        responses=inline_serializer("Released", {"released": serializers.IntegerField()}),
    )
    def post(self, request):
        """What this token (or session) claimed, or the items named: the same moderator's
        other credentials keep their claims."""
        data = _valid(ReleaseSerializer, request)
        wanted = data.get("items")
        released = claims.release_claims(
            request.user, wanted, source=None if wanted else credential_of(request)
        )
        return Response({"released": released})


class HeartbeatAPI(ReviewAPIView):
    @extend_schema(request=None, responses=ITEMS)
    def post(self, request):
        entries = claims.heartbeat(request.user)
        return Response({"items": ReviewItemSerializer(entries, many=True).data})


class StatsAPI(ReviewAPIView):
    @extend_schema(
        responses=inline_serializer(
            "ReviewStats",
            {
                "pending": serializers.IntegerField(),
                "claimed": serializers.IntegerField(),
                "claimed_by_me": serializers.IntegerField(),
                "claimed_by_others": serializers.IntegerField(),
                "oldest_pending_at": serializers.DateTimeField(allow_null=True),
                "oldest_pending_age_s": serializers.IntegerField(allow_null=True),
            },
        )
    )
    def get(self, request):
        return Response(counts.pending_stats(request.user))


class DecisionAPI(ReviewAPIView):
    @extend_schema(
        request=DecisionInputSerializer, responses={200: DECISIONS, 400: ERROR, 409: ERROR}
    )
    def post(self, request, item_uuid):
        data = _valid(DecisionInputSerializer, request)
        item = access.item_for_moderator(request.user, item_uuid)
        made = decisions.record_decision(
            request.user, item, data["decision"], data.get("reason", "")
        )
        return Response({"decisions": DecisionSerializer(made, many=True).data})


class OverrideAPI(ReviewAPIView):
    @extend_schema(
        request=DecisionInputSerializer,
        responses={
            201: inline_serializer("ReviewOverride", {"decision": DecisionSerializer()}),
            400: ERROR,
            409: ERROR,
        },
    )
    def post(self, request, item_uuid):
        data = _valid(DecisionInputSerializer, request)
        item = access.item_for_moderator(request.user, item_uuid)
        record = decisions.override_decision(
            request.user, item, data["decision"], data.get("reason", "")
        )
        return Response(
            {"decision": DecisionSerializer(record).data}, status=status.HTTP_201_CREATED
        )
