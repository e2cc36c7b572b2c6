from django.urls import path

from . import views

app_name = "uploads"
urlpatterns = [
    path("", views.upload_page, name="upload"),
    path("submit/", views.upload, name="submit"),
    path("feed/", views.feed, name="feed"),
    path("items/<uuid:item_uuid>/", views.item_detail, name="item"),
    path("items/<uuid:item_uuid>/status/", views.item_status, name="item_status"),
    path("items/<uuid:item_uuid>/original/", views.original, name="original"),
    path("items/<uuid:item_uuid>/frames/<int:number>/", views.frame, name="frame"),
]
