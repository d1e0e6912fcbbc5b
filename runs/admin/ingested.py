"""Admin for the ingested runs (read-mostly): runs, artifacts, ingest errors."""

from django.contrib import admin

from runs.models import Artifact, IngestError, Run, Step


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    fields = ["name", "status", "artifact_count", "first_event_at", "last_event_at"]
    readonly_fields = fields


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "bucket",
        "pipeline",
        "namespace",
        "status",
        "artifact_count",
        "last_event_at",
        "seq",
    ]
    list_filter = ["bucket", "status", "layout"]
    search_fields = ["name", "pipeline", "run_key"]
    readonly_fields = [
        "bucket",
        "run_key",
        "layout",
        "first_event_at",
        "last_event_at",
        "artifact_count",
        "seq",
    ]
    inlines = [StepInline]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["key", "bucket", "kind", "size", "etag", "deleted", "event_time"]
    list_filter = ["bucket", "kind", "deleted"]
    search_fields = ["key"]
    list_select_related = ["bucket"]
    raw_id_fields = ["run", "step"]
    readonly_fields = [
        "run",
        "step",
        "bucket",
        "key",
        "name",
        "size",
        "etag",
        "content_type",
        "version_id",
        "sequencer",
        "event_order",
        "event_time",
        "deleted",
    ]


@admin.register(IngestError)
class IngestErrorAdmin(admin.ModelAdmin):
    list_display = ["created_at", "topic", "partition", "offset", "error"]
    list_filter = ["topic"]
    search_fields = ["error"]
    readonly_fields = ["topic", "partition", "offset", "message_key", "raw_preview", "error", "created_at"]
    exclude = ["raw"]
