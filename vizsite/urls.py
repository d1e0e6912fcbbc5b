"""Top-level URL map."""

from django.contrib import admin
from django.urls import include, path

from runs.urls import portal_urlpatterns, viewer_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("vizsite.accounts")),  # login throttling; no password reset
    path("", include((portal_urlpatterns, "runs"))),
    path("", include((viewer_urlpatterns, "viewers"))),  # viewer endpoints (docs/viewers.md)
]
