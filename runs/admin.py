"""Admin for topics, buckets and the ingested runs (read-mostly for the latter)."""

from django import forms
from django.contrib import admin

from runs.models import Artifact, Bucket, IngestError, KafkaTopic, Run, Step
from runs.storage import store_aliases


@admin.register(KafkaTopic)
class KafkaTopicAdmin(admin.ModelAdmin):
    list_display = ["name", "message_format", "enabled", "partitions", "bootstrap_servers", "updated_at"]
    list_filter = ["enabled", "message_format"]
    search_fields = ["name"]


class BucketForm(forms.ModelForm):
    """The store is picked from the configured aliases: no address can be typed in."""

    store = forms.ChoiceField(choices=[])

    class Meta:
        model = Bucket
        fields = ["name", "store", "topic", "layouts", "prefix_filter", "suffix_filter", "event_names"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].choices = [(alias, alias) for alias in store_aliases()]


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):
    form = BucketForm
    list_display = ["name", "store", "topic", "notification_status", "last_event_at"]
    list_filter = ["notification_status", "topic"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["notification_status", "notification_error", "last_event_at"]
        # Runs, artifacts and grants are keyed by this bucket; renaming it once events
        # arrived would attach them to another bucket's objects (docs/security.md).
        if obj is not None and (obj.last_event_at is not None or obj.runs.exists()):
            fixed = ["name", *fixed]
        return fixed


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
