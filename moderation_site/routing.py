from review.routing import websocket_urlpatterns as review_ws
from uploads.routing import websocket_urlpatterns as uploads_ws

websocket_urlpatterns = [*uploads_ws, *review_ws]
