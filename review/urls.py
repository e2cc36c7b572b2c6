from django.urls import path

from . import api, views

app_name = "review"
urlpatterns = [
    path("", views.queue_page, name="queue"),
    path("claim/", views.claim, name="claim"),
    path("release/", views.release, name="release"),
    path("heartbeat/", views.heartbeat, name="heartbeat"),
    path("stats/", views.stats, name="stats"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("decide/", views.decide, name="decide"),
    path("items/<uuid:item_uuid>/", views.item_history, name="item"),
    path("items/<uuid:item_uuid>/decide/", views.decide_one, name="decide_one"),
    path("items/<uuid:item_uuid>/override/", views.override, name="override"),
    path("items/<uuid:item_uuid>/add-to-bank/", views.add_to_bank, name="add_to_bank"),
]

# Mounted at /api/v1/review/ (namespace "review-api").
api_urlpatterns = [
    path("claim", api.ClaimAPI.as_view(), name="claim"),
    path("release", api.ReleaseAPI.as_view(), name="release"),
    path("heartbeat", api.HeartbeatAPI.as_view(), name="heartbeat"),
    path("stats", api.StatsAPI.as_view(), name="stats"),
    path("items/<uuid:item_uuid>/decision", api.DecisionAPI.as_view(), name="decision"),
    path("items/<uuid:item_uuid>/override", api.OverrideAPI.as_view(), name="override"),
]
