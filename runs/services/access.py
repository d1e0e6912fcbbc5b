"""Grants: which groups see which buckets (docs/security.md, docs/portal.md#access).

Reads are decided by ``runs.selectors.access`` (``access_scope_for``,
``runs_visible_to``); this module only writes grants.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from runs.models import Bucket, BucketGrant
from runs.selectors.access import normalize_prefix


@transaction.atomic
def bucket_grant_create(*, group: Group, bucket: Bucket, key_prefix: str = "",
                        namespace: str = "") -> BucketGrant:
    """Let ``group`` see ``bucket``'s runs, optionally only under ``key_prefix`` and/or ``namespace``.

    The prefix matches whole path segments ("team-x" shows "team-x/…", never
    "team-xavier"); it is stored without surrounding slashes. Idempotent:
    granting the same scope twice returns the existing grant.
    """
    grant, _ = BucketGrant.objects.get_or_create(group=group, bucket=bucket,
                                                 key_prefix=normalize_prefix(key_prefix),
                                                 namespace=namespace.strip())
    return grant
