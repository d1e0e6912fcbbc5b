"""Buckets in the console: created, wired and checked for drift through runs/services/buckets.py;
MinIO's Kafka targets through runs/services/store_targets.py (docs/operations.md)."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from runs.admin.base import ServiceAdminMixin, ServiceForm
from runs.brokers import BrokerError, bootstrap_for, broker_topic_exists
from runs.models import Bucket, BucketSweep, Probe
from runs.selectors.buckets import (
    bucket_notification_check,
    bucket_probes_recent,
    bucket_sweeps_recent,
    filter_value_problem,
    store_kafka_targets,
)
from runs.services.bucket_probes import probe_refresh, probe_send
from runs.services.buckets import (
    BucketError,
    bucket_create,
    bucket_delete,
    bucket_notification_configure,
    bucket_update,
)
from runs.services.reconcile import sweep_request
from runs.services.store_targets import TargetError, store_restart, store_target_remove, store_target_set
from runs.storage import store_aliases, store_kind


class BucketForm(ServiceForm):
    """The store is picked from the configured aliases: no address can be typed in."""

    service_errors = (BucketError,)
    store = forms.ChoiceField(choices=[])
    notify_arn = forms.ChoiceField(
        label="Notification target",
        required=False,
        help_text="The MinIO Kafka target the bucket publishes through, and the topic it publishes to "
        "(manage them under MinIO targets). Not used for SeaweedFS.",
    )

    class Meta:
        model = Bucket
        fields = [
            "name",
            "store",
            "topic",
            "notify_arn",
            "layouts",
            "prefix_filter",
            "suffix_filter",
            "event_names",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "store" in self.fields:
            self.fields["store"].choices = [(alias, alias) for alias in store_aliases()]
        self.fields["notify_arn"].choices = _target_choices(current=self.instance.notify_arn)

    def _filter(self, field: str) -> str:
        value = self.cleaned_data[field]
        problem = filter_value_problem(value)
        if problem:
            raise forms.ValidationError(f"This filter {problem}.")
        return value

    def clean_prefix_filter(self):
        return self._filter("prefix_filter")

    def clean_suffix_filter(self):
        return self._filter("suffix_filter")

    def clean_event_names(self):
        names = self.cleaned_data["event_names"] or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise forms.ValidationError('Event names are a list of strings, e.g. ["s3:ObjectCreated:*"].')
        return names

    def apply(self):
        data = self.cleaned_data
        common = {
            "topic": data["topic"],
            "layouts": data["layouts"],
            "prefix_filter": data["prefix_filter"],
            "suffix_filter": data["suffix_filter"],
            "event_names": data["event_names"],
            "notify_arn": data["notify_arn"],
        }
        if self.instance.pk is None:
            return bucket_create(name=data["name"], store=data["store"], **common)
        return bucket_update(bucket=self.instance, name=data.get("name"), **common)


def _target_choices(*, current: str) -> list[tuple[str, str]]:
    """Every loaded Kafka target of every MinIO store, labelled with the topic it publishes to."""
    choices = [("", f"the MINIO_NOTIFY_ARN setting ({settings.MINIO_NOTIFY_ARN})")]
    for alias in store_aliases():
        if store_kind(alias) != "minio":
            continue
        targets, _ = store_kafka_targets(store=alias)
        choices += [(t.arn, f"{t.arn} → topic {t.topic} (store {alias})") for t in targets]
    if current and current not in {value for value, _ in choices}:
        choices.append((current, f"{current} (not loaded by any store)"))
    seen, unique = set(), []
    for value, label in choices:  # one entry per ARN, even when stores share a target id
        if value not in seen:
            seen.add(value)
            unique.append((value, label))
    return unique


def _probes_html(bucket: Bucket) -> str:
    probes = bucket_probes_recent(bucket=bucket)
    return render_to_string(
        "admin/runs/bucket/_probes.html",
        {
            "bucket": bucket,
            "probes": [(p, p.hops_ms()) for p in probes],
            "pending": any(p.status == Probe.Status.PENDING for p in probes),
            "kind": store_kind(bucket.store),
        },
    )


# Shown on an existing bucket's page, never edited there.
_STATE_FIELDS = [
    "notification_status",
    "notification_error",
    "last_event_at",
    "in_the_store",
    "probes",
    "sweeps",
]


@admin.register(Bucket)
class BucketAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = BucketForm
    list_display = ["name", "store", "topic", "notification_status", "last_event_at"]
    list_filter = ["notification_status", "topic"]
    search_fields = ["name"]
    change_form_template = "admin/runs/bucket/change_form.html"
    change_list_template = "admin/runs/bucket/change_list.html"

    def get_fields(self, request, obj=None):
        fields = list(BucketForm.Meta.fields)
        if obj is None:
            return fields
        return [*fields, *_STATE_FIELDS]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fixed = ["store", *_STATE_FIELDS]
        # Runs, artifacts and grants are keyed by this bucket; renaming it once events
        # arrived would attach them to another bucket's objects (docs/security.md).
        if obj.last_event_at is not None or obj.runs.exists():
            fixed = ["name", *fixed]
        return fixed

    @admin.display(description="In the store")
    def in_the_store(self, obj):
        context = {"bucket": obj, "kind": store_kind(obj.store)}
        if context["kind"] == "minio":
            context["check"] = bucket_notification_check(bucket=obj)
        else:
            context["filer_topic"] = settings.SEAWEEDFS_KAFKA_TOPIC
            try:
                context["filer_topic_exists"] = broker_topic_exists(
                    name=settings.SEAWEEDFS_KAFKA_TOPIC, bootstrap=bootstrap_for()
                )
            except BrokerError as exc:
                context["filer_topic_error"] = str(exc)
        return render_to_string("admin/runs/bucket/_in_the_store.html", context)

    @admin.display(description="Probes")
    def probes(self, obj):
        return _probes_html(obj)

    @admin.display(description="Reconciliation")
    def sweeps(self, obj):
        sweeps = bucket_sweeps_recent(bucket=obj)
        return render_to_string("admin/runs/bucket/_sweeps.html", {"sweeps": sweeps})

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except BucketError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:runs_bucket_change", args=[object_id]))

    def delete_model(self, request, obj):
        # The row, and Pipelens' rule in the store; the store keeps the bucket and its objects.
        bucket_delete(bucket=obj)

    def delete_queryset(self, request, queryset):
        for bucket in queryset:
            try:
                bucket_delete(bucket=bucket)
            except BucketError as exc:
                self.message_user(request, f"{bucket.name}: {exc}", messages.ERROR)

    # --- extra pages: re-apply, MinIO targets -------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/reapply/", wrap(require_POST(self.reapply_view)), name="runs_bucket_reapply"),
            path(
                "<int:pk>/reconcile/", wrap(require_POST(self.reconcile_view)), name="runs_bucket_reconcile"
            ),
            path("<int:pk>/probe/", wrap(require_POST(self.probe_view)), name="runs_bucket_probe"),
            path("<int:pk>/probes/", wrap(self.probes_view), name="runs_bucket_probes"),
            path("targets/", wrap(self.targets_view), name="runs_bucket_targets"),
            *super().get_urls(),
        ]

    def _changeable(self, request, pk) -> Bucket | None:
        """The bucket an action view acts on, or None when the user may not change it."""
        bucket = get_object_or_404(Bucket, pk=pk)
        return bucket if self.has_change_permission(request, bucket) else None

    def reapply_view(self, request, pk):
        bucket = self._changeable(request, pk)
        if bucket is None:
            return HttpResponseRedirect(reverse("admin:index"))
        bucket = bucket_notification_configure(bucket=bucket)
        if bucket.notification_status == Bucket.NotificationStatus.FAILED:
            self.message_user(request, f"Not applied: {bucket.notification_error}", messages.ERROR)
        else:
            self.message_user(request, f"Notification of {bucket.name} applied.")
        return HttpResponseRedirect(reverse("admin:runs_bucket_change", args=[pk]))

    def reconcile_view(self, request, pk):
        """Ask the consumer to list the bucket and bring the database in line (docs/reconcile.md)."""
        bucket = self._changeable(request, pk)
        if bucket is None:
            return HttpResponseRedirect(reverse("admin:index"))
        sweep = sweep_request(bucket=bucket, reason=BucketSweep.Reason.MANUAL)
        self.message_user(
            request,
            f"Reconciliation of {bucket.name} {sweep.get_status_display().lower()}: the consumer lists the "
            "bucket within a few seconds and shows the outcome below.",
        )
        return HttpResponseRedirect(reverse("admin:runs_bucket_change", args=[pk]))

    def probe_view(self, request, pk):
        """Send a probe (docs/operations.md#probe); the page then follows it (probes_view)."""
        bucket = self._changeable(request, pk)
        if bucket is None:
            return HttpResponseRedirect(reverse("admin:index"))
        probe = probe_send(bucket=bucket)
        if probe.status == Probe.Status.FAILED:
            self.message_user(request, f"Probe failed: {probe.error}", messages.ERROR)
        else:
            self.message_user(request, f"Probe sent to {bucket.name}: waiting for its event.")
        return HttpResponseRedirect(reverse("admin:runs_bucket_change", args=[pk]) + "#bucket-probes")

    def probes_view(self, request, pk):
        """The probes table, its pending probes settled first: polled by probe.js while one waits."""
        bucket = self._changeable(request, pk)
        if bucket is None:
            return HttpResponseRedirect(reverse("admin:index"))
        for probe in bucket_probes_recent(bucket=bucket):
            if probe.status == Probe.Status.PENDING:
                probe_refresh(probe=probe)
        return HttpResponse(_probes_html(bucket))

    def targets_view(self, request):
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method == "POST":
            self._targets_post(request)
            return HttpResponseRedirect(reverse("admin:runs_bucket_targets"))
        stores = []
        for alias in store_aliases():
            if store_kind(alias) != "minio":
                continue
            targets, error = store_kafka_targets(store=alias)
            users = {}
            for name, arn in Bucket.objects.filter(store=alias).values_list("name", "notify_arn"):
                users.setdefault(arn or settings.MINIO_NOTIFY_ARN, []).append(name)
            stores.append(
                {
                    "alias": alias,
                    "error": error,
                    "targets": [{"target": t, "buckets": users.get(t.arn, [])} for t in targets],
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "MinIO notification targets",
            "stores": stores,
            "default_brokers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "default_arn": settings.MINIO_NOTIFY_ARN,
        }
        return TemplateResponse(request, "admin/runs/bucket/targets.html", context)

    def _targets_post(self, request):
        store, target_id = request.POST.get("store", ""), request.POST.get("target_id", "").strip()
        action = request.POST.get("action")
        if store not in store_aliases():
            self.message_user(request, "Unknown object store.", messages.ERROR)
            return
        try:
            if action == "set":
                arn = store_target_set(
                    store=store,
                    target_id=target_id,
                    topic=request.POST.get("topic", "").strip(),
                    brokers=request.POST.get("brokers", "").strip(),
                )
                self.message_user(
                    request,
                    f"Target {arn} stored in {store}. MinIO loads targets when it starts: "
                    "restart it below to use it.",
                    messages.WARNING,
                )
            elif action == "remove":
                store_target_remove(store=store, target_id=target_id)
                self.message_user(request, f"Target {target_id} removed from {store}'s configuration.")
            elif action == "restart":
                store_restart(store=store, expect_target=target_id)
                self.message_user(request, f"{store} restarted; its targets are loaded.")
        except TargetError as exc:
            self.message_user(request, str(exc), messages.ERROR)
