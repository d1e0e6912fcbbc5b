from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from runs.services.access import connect_access_signals
        from runs.services.changes import changes_subscribe
        from runs.services.recipes import on_changes as recipe_changes
        from runs.services.renditions import on_changes as render_changes
        from runs.services.run_metrics import on_changes as run_metrics_changes

        # Render the object versions each committed ingest batch stored (docs/viewers.md).
        changes_subscribe(render_changes)
        # Run the recipes set to run on new artifacts of their buckets (docs/recipes.md).
        changes_subscribe(recipe_changes)
        # Keep the runs list's metric values current when a metrics file is overwritten
        # or deleted (docs/portal.md#metrics).
        changes_subscribe(run_metrics_changes)
        # Edits of users, groups and grants made through Django's admin and auth
        # views announce access changes too (docs/security.md).
        connect_access_signals()
