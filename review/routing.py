from django.urls import path

from . import consumers

websocket_urlpatterns = [path("ws/review/", consumers.ReviewCountsConsumer.as_asgi())]
