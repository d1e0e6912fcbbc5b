from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from runs.services.bucket_probes import probes_subscribe
        from runs.services.changes import access_changes_subscribe, changes_subscribe
        from streaming.live.broadcast import on_access_changed, on_probes
        from streaming.live.broadcast import on_changes as push_changes

        # Push every committed change to the browsers watching (docs/portal.md#live).
        changes_subscribe(push_changes)
        # Make open sockets check their access again when it changed (docs/security.md).
        access_changes_subscribe(on_access_changed)
        # A bucket probe's last hop: its announcement handed to the channel layer.
        probes_subscribe(on_probes)
