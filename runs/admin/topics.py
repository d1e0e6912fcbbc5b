"""Topics in the console: created and changed on the broker through runs/services/topics.py."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse

from runs.admin.base import ServiceAdminMixin, ServiceForm
from runs.brokers import BrokerError
from runs.models import KafkaTopic
from runs.selectors.topics import topic_broker_state
from runs.services.topics import TopicError, topic_create, topic_delete, topic_name_validate, topic_update


class TopicForm(ServiceForm):
    service_errors = (TopicError,)

    class Meta:
        model = KafkaTopic
        fields = [
            "name",
            "message_format",
            "bootstrap_servers",
            "enabled",
            "partitions",
            "replication_factor",
            "retention_ms",
            "notes",
        ]

    def clean_name(self):
        name = self.cleaned_data["name"]
        try:
            topic_name_validate(name)
        except TopicError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return name

    def clean_partitions(self):
        partitions = self.cleaned_data["partitions"]
        if partitions < 1:
            raise forms.ValidationError("A topic needs at least one partition.")
        return partitions

    def apply(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            return topic_create(
                name=data["name"],
                partitions=data["partitions"],
                replication_factor=data["replication_factor"],
                retention_ms=data["retention_ms"],
                message_format=data["message_format"],
                bootstrap_servers=data["bootstrap_servers"],
                enabled=data["enabled"],
                notes=data["notes"],
            )
        return topic_update(
            topic=self.instance,
            partitions=data["partitions"],
            retention_ms=data["retention_ms"],
            enabled=data["enabled"],
            message_format=data["message_format"],
            notes=data["notes"],
        )


@admin.register(KafkaTopic)
class KafkaTopicAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = TopicForm
    list_display = ["name", "message_format", "enabled", "partitions", "retention_ms", "bootstrap_servers"]
    list_filter = ["enabled", "message_format"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Where the topic lives and how many copies it has are fixed once it exists.
        return ["name", "bootstrap_servers", "replication_factor", "on_the_broker"]

    def get_fields(self, request, obj=None):
        fields = list(TopicForm.Meta.fields)
        return fields if obj is None else [*fields, "on_the_broker"]

    @admin.display(description="On the broker")
    def on_the_broker(self, obj):
        try:
            state, error = topic_broker_state(topic=obj), ""
        except BrokerError as exc:
            state, error = None, str(exc)
        return render_to_string("admin/runs/kafkatopic/_broker_state.html", {"state": state, "error": error})

    # --- deletion: the row only, unless the operator types the topic's name ---------

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except TopicError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:runs_kafkatopic_change", args=[object_id]))

    def delete_model(self, request, obj):
        typed = request.POST.get("delete_on_broker_name", "").strip()
        on_broker = bool(typed) and typed == obj.name
        if typed and not on_broker:
            raise TopicError(f"The name typed ({typed[:80]!r}) is not {obj.name!r}: nothing was deleted.")
        topic_delete(topic=obj, delete_on_broker=on_broker)
        if on_broker:
            self.message_user(request, f"Topic {obj.name} and its messages were deleted on the broker.")
        else:
            self.message_user(request, f"Topic {obj.name} is kept on the broker; only Pipelens forgot it.")

    def delete_queryset(self, request, queryset):
        for topic in queryset:  # bulk deletion never touches the broker
            topic_delete(topic=topic)
