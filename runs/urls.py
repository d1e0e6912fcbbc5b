"""Portal URLs (docs/portal.md) and viewer endpoints (docs/viewers.md).

Two namespaces, ``runs:`` and ``viewers:``, both included from vizsite/urls.py.
Every view asks runs.selectors for access.
"""

from django.urls import path

from runs.views import api, compare, pages, recipes, viewers

_artifact = "runs/<int:run_id>/artifacts/<int:artifact_id>/"
_rendition = _artifact + "renditions/<int:rendition_id>/"

portal_urlpatterns = [
    path("", pages.run_list, name="list"),
    path("runs/<int:run_id>/", pages.run_detail, name="detail"),
    path(_artifact, pages.artifact_detail, name="artifact"),
    path(_artifact + "download", pages.artifact_download, name="artifact_download"),
    path(_artifact + "preview", pages.artifact_preview, name="artifact_preview"),
    path("api/runs/<int:run_id>/state", api.api_run_state, name="api_run_state"),
    # Compare runs (docs/compare.md)
    path("compare/", compare.compare_runs, name="compare"),
    path("compare/table-rows", compare.merged_table_rows, name="compare_table_rows"),
    # Recipes (docs/recipes.md)
    path("recipes/", recipes.recipe_list, name="recipe_list"),
    path("recipes/new", recipes.recipe_new, name="recipe_new"),
    path("recipes/<int:recipe_id>/", recipes.recipe_edit, name="recipe_edit"),
    path(_artifact + "recipes/<int:recipe_id>/run", recipes.recipe_run, name="recipe_run"),
    path("api/recipes", recipes.api_recipe_create, name="api_recipe_create"),
    path("api/recipes/<int:recipe_id>", recipes.api_recipe_update, name="api_recipe_update"),
    path("api/recipes/<int:recipe_id>/run", recipes.api_recipe_run, name="api_recipe_run"),
]

viewer_urlpatterns = [
    path(_rendition + "rows", viewers.table_rows, name="table_rows"),
    path(_rendition + "earlier", viewers.text_earlier, name="text_earlier"),
    path(_rendition + "thumbnail", viewers.thumbnail, name="thumbnail"),
    path(_rendition + "image", viewers.full_image, name="full_image"),
    path(_rendition + "app-url", viewers.webapp_link, name="webapp_link"),
]
