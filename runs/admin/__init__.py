"""The operations console: Django's admin, customised (docs/operations.md).

Staff only (the admin's own rule). Topics, buckets and grants are written
through ``runs/services`` only: each form calls its service at the end of
validation, so whatever the broker or the store refuses is shown on the form
and nothing is saved (``runs.admin.base.ServiceForm``).
"""

from django.contrib import admin

from runs.admin import buckets, grants, ingested, topics  # noqa: F401 - registers the model admins

admin.site.site_header = "Pipelens console"
admin.site.site_title = "Pipelens console"
admin.site.index_title = "Topics, buckets, grants and what was ingested"
