"""The console's health page (docs/operations.md#health): is everything flowing?

Registered on ``ConsumerHeartbeat`` (shown as "Health" in the sidebar) so the
admin lists and guards it like any page; its list view is the health page.
Reads through ``runs.selectors.health`` and ``runs.queues``; retry and discard
through ``runs.services.health``.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from runs.models import ConsumerHeartbeat
from runs.queues import celery_queue_depths
from runs.selectors.health import CHART_MINUTES, health_overview
from runs.services.health import ingest_errors_discard, ingest_errors_retry_request

_CHART_W, _CHART_H = 120, 24


def sparkline(minutes: list[int]) -> str:
    """SVG polyline points for events per minute (the page's small chart), scaled to the hour's peak."""
    peak = max(minutes) or 1
    step = _CHART_W / max(CHART_MINUTES - 1, 1)
    return " ".join(
        f"{i * step:.1f},{_CHART_H - 1 - (n / peak) * (_CHART_H - 2):.1f}" for i, n in enumerate(minutes)
    )


@admin.register(ConsumerHeartbeat)
class HealthAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("errors/", wrap(require_POST(self.errors_view)), name="runs_health_errors"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        health = health_overview()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Health",
            "health": health,
            "buckets": [(b, sparkline(b.minutes)) for b in health.buckets],
            # one reverse() instead of one per bucket (100 of them cost ~10 ms)
            "buckets_url": reverse("admin:runs_bucket_changelist"),
            "queues": celery_queue_depths(),
            "chart_w": _CHART_W,
            "chart_h": _CHART_H,
            "can_fix_errors": request.user.has_perm("runs.delete_ingesterror"),
        }
        return TemplateResponse(request, "admin/runs/health.html", context)

    def errors_view(self, request):
        """Retry or discard the ingest errors ticked on the page (or every error of a topic)."""
        back = HttpResponseRedirect(reverse("admin:runs_consumerheartbeat_changelist"))
        if not request.user.has_perm("runs.delete_ingesterror"):
            self.message_user(request, "You may not retry or discard ingest errors.", messages.ERROR)
            return back
        ids = [int(i) for i in request.POST.getlist("error") if i.isdigit()]
        topic = request.POST.get("topic", "") if request.POST.get("scope") == "topic" else None
        if not ids and not topic:
            self.message_user(request, "No ingest error selected.", messages.WARNING)
            return back
        if request.POST.get("action") == "discard":
            removed = ingest_errors_discard(ids=ids, topic=topic)
            self.message_user(request, f"Discarded {removed} ingest error(s).")
            return back
        done = ingest_errors_retry_request(ids=ids, topic=topic)
        parts = []
        if done.marked:
            parts.append(f"{done.marked} message(s) will be parsed and ingested again by the consumer")
        if done.swept_buckets:
            parts.append(f"a sweep of {', '.join(done.swept_buckets)} was requested")
        if done.unknown_buckets:
            parts.append(f"not retried (bucket no longer registered): {', '.join(done.unknown_buckets)}")
        self.message_user(request, "; ".join(parts) + "." if parts else "Nothing to retry.")
        return back
