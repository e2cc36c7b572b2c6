"""Routes under /api/v1/ (the review API keeps /api/v1/review/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("me", views.Me.as_view(), name="me"),
]
