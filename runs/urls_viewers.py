"""Viewer endpoints (docs/viewers.md); included from vizsite/urls.py."""

from django.urls import path

from runs import views_viewers as v

app_name = "viewers"

_r = "runs/<int:run_id>/artifacts/<int:artifact_id>/renditions/<int:rendition_id>/"

urlpatterns = [
    path(_r + "rows", v.table_rows, name="table_rows"),
    path(_r + "earlier", v.text_earlier, name="text_earlier"),
    path(_r + "thumbnail", v.thumbnail, name="thumbnail"),
    path(_r + "image", v.full_image, name="full_image"),
    path(_r + "app-url", v.webapp_link, name="webapp_link"),
]
