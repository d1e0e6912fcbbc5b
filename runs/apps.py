from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from runs.services.changes import changes_subscribe
        from runs.services.renditions import on_changes as render_changes

        # Render the object versions each committed ingest batch stored (docs/viewers.md).
        changes_subscribe(render_changes)
