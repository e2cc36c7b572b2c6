"""The public API's base view: key authentication, a scope per view, the client's rate."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import ApiKeyAuthentication, client_of
from .permissions import HasScope
from .throttling import ClientRateThrottle


class ClientView(APIView):
    """Every public endpoint: 401 without a valid key, 403 without ``required_scope``,
    429 with Retry-After over the client's rate, errors in the one JSON shape."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ClientRateThrottle]
    required_scope: str | None = None

    @property
    def client(self):
        return client_of(self.request)


class MeSerializer(serializers.Serializer):
    client = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    throttle_rate = serializers.CharField()
    key = serializers.CharField(help_text="The key's prefix (the key itself is never shown).")
    callback_url = serializers.URLField(allow_null=True)


class Me(ClientView):
    """The client a key belongs to: its name, scopes and rate (what a key may do)."""

    @extend_schema(responses=MeSerializer, tags=["clients"])
    def get(self, request):
        client = self.client
        return Response(
            {
                "client": client.name,
                "scopes": list(client.scopes),
                "throttle_rate": client.throttle_rate,
                "key": request.auth.prefix,
                "callback_url": client.callback_url or None,
            }
        )
