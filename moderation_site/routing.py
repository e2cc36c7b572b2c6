from uploads.routing import websocket_urlpatterns as uploads_ws

websocket_urlpatterns = [*uploads_ws]
