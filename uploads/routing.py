from django.urls import path

from . import consumers

websocket_urlpatterns = [path("ws/uploads/", consumers.UploadStatusConsumer.as_asgi())]
