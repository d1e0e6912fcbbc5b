"""Portal URLs (docs/portal.md). Every view asks runs.selectors for access."""

from django.urls import path

from runs import views

app_name = "runs"

urlpatterns = [
    path("", views.run_list, name="list"),
    path("runs/<int:run_id>/", views.run_detail, name="detail"),
    path("runs/<int:run_id>/artifacts/<int:artifact_id>/", views.artifact_detail, name="artifact"),
    path("runs/<int:run_id>/artifacts/<int:artifact_id>/download", views.artifact_download,
         name="artifact_download"),
    path("runs/<int:run_id>/artifacts/<int:artifact_id>/preview", views.artifact_preview,
         name="artifact_preview"),
    path("api/runs/<int:run_id>/state", views.api_run_state, name="api_run_state"),
]
