"""Grants in the console: granted and revoked through runs/services/access.py, with a preview of
the runs a grant shows, decided by the grant rule itself (runs/selectors/access.py)."""

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.template.loader import render_to_string

from runs.models import BucketGrant
from runs.selectors.access import grant_preview, normalize_prefix
from runs.services.access import bucket_grant_create, bucket_grant_delete


class GrantForm(forms.ModelForm):
    class Meta:
        model = BucketGrant
        fields = ["group", "bucket", "key_prefix", "namespace"]

    def clean_key_prefix(self):
        return normalize_prefix(self.cleaned_data["key_prefix"])

    def clean_namespace(self):
        return self.cleaned_data["namespace"].strip()


def _preview_html(*, bucket_id, key_prefix: str, namespace: str) -> str:
    count, runs = grant_preview(bucket_id=bucket_id, key_prefix=key_prefix, namespace=namespace)
    return render_to_string("admin/runs/bucketgrant/_preview.html", {"count": count, "runs": runs})


@admin.register(BucketGrant)
class BucketGrantAdmin(admin.ModelAdmin):
    """Grants are added and revoked, never edited: a changed scope is a new grant."""

    form = GrantForm
    list_display = ["group", "bucket", "key_prefix", "namespace", "created_at"]
    list_filter = ["bucket", "group"]
    search_fields = ["group__name", "bucket__name", "key_prefix", "namespace"]
    change_form_template = "admin/runs/bucketgrant/change_form.html"

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = list(GrantForm.Meta.fields)
        return fields if obj is None else [*fields, "created_at", "runs_shown"]

    def get_readonly_fields(self, request, obj=None):
        return (
            [] if obj is None else ["group", "bucket", "key_prefix", "namespace", "created_at", "runs_shown"]
        )

    @admin.display(description="Runs this grant shows")
    def runs_shown(self, obj):
        return _preview_html(bucket_id=obj.bucket_id, key_prefix=obj.key_prefix, namespace=obj.namespace)

    def save_model(self, request, obj, form, change):
        grant = bucket_grant_create(
            group=obj.group, bucket=obj.bucket, key_prefix=obj.key_prefix, namespace=obj.namespace
        )
        obj.pk, obj.created_at = grant.pk, grant.created_at

    def delete_model(self, request, obj):
        bucket_grant_delete(grant=obj)

    def delete_queryset(self, request, queryset):
        for grant in queryset:
            bucket_grant_delete(grant=grant)

    # --- "Preview": the add form again, with the runs the grant would show, nothing saved

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "POST" and "_preview" in request.POST:
            return self._preview_view(request, extra_context)
        return super().add_view(request, form_url, extra_context)

    def _preview_view(self, request, extra_context):
        form = self.get_form(request)(request.POST)
        preview = ""
        if form.is_valid():
            data = form.cleaned_data
            preview = _preview_html(
                bucket_id=data["bucket"].pk, key_prefix=data["key_prefix"], namespace=data["namespace"]
            )
        fieldsets = self.get_fieldsets(request)
        admin_form = helpers.AdminForm(form, list(fieldsets), {}, [], model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": "Add bucket grant",
            "subtitle": None,
            "adminform": admin_form,
            "object_id": None,
            "original": None,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "grant_preview": preview,
            **(extra_context or {}),
        }
        return self.render_change_form(request, context, add=True, change=False, obj=None)
