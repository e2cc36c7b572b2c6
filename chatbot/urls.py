from django.urls import path

from . import views

urlpatterns = [
    path("events/", views.events, name="events"),
    path("interactions/", views.interactions, name="interactions"),
    path("install/", views.install, name="install"),
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
]
