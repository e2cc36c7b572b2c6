from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from moderation_site.metrics import metrics_view
from review.urls import api_urlpatterns as review_api

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="uploads:upload", permanent=False)),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's, the API docs).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=False)),
    path("accounts/", include("accounts.urls")),
    path("uploads/", include("uploads.urls")),
    path("review/", include("review.urls")),
    path("api/v1/review/", include((review_api, "review-api"))),
    path("api/v1/", include(("api.urls", "api"))),
    path("slack/", include(("chatbot.urls", "chatbot"))),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "moderation_site.errors.handler400"
handler403 = "moderation_site.errors.handler403"
handler404 = "moderation_site.errors.handler404"
handler500 = "moderation_site.errors.handler500"
