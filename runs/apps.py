from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from runs.services import ingest
        from streaming.broadcast import on_ingest_committed

        # Push every committed ingest batch to the browsers watching (docs/portal.md).
        if on_ingest_committed not in ingest.on_batch_committed:
            ingest.on_batch_committed.append(on_ingest_committed)

        # Render what each committed batch changed (docs/viewers.md).
        from runs.services.renditions import on_batch_committed as render_changed

        if render_changed not in ingest.on_batch_committed:
            ingest.on_batch_committed.append(render_changed)
