"""Grants: which groups see which buckets (docs/security.md, docs/portal.md#access).

Reads are decided by ``runs.selectors.access`` (``access_scope_for``,
``runs_visible_to``); this module writes grants and announces every change
of who may see what (``access_changed_on_commit``), so open sockets check
again within seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from runs.models import Bucket, BucketGrant
from runs.selectors.access import normalize_prefix
from runs.services.changes import access_changed_on_commit


def _members(group_ids: Iterable[int]) -> list[int]:
    return list(
        get_user_model()
        ._default_manager.filter(groups__in=list(group_ids))
        .values_list("pk", flat=True)
        .distinct()
    )


@transaction.atomic
def bucket_grant_create(
    *, group: Group, bucket: Bucket, key_prefix: str = "", namespace: str = ""
) -> BucketGrant:
    """Let ``group`` see ``bucket``'s runs, optionally only under ``key_prefix`` and/or ``namespace``.

    The prefix matches whole path segments ("team-x" shows "team-x/…", never
    "team-xavier"); it is stored without surrounding slashes. Idempotent:
    granting the same scope twice returns the existing grant.
    """
    grant, _ = BucketGrant.objects.get_or_create(
        group=group, bucket=bucket, key_prefix=normalize_prefix(key_prefix), namespace=namespace.strip()
    )
    return grant  # the group's members are told by _grant_changed below


@transaction.atomic
def bucket_grant_delete(*, grant: BucketGrant) -> None:
    """Revoke a grant; its group's open sockets re-check their access after commit
    (announced by _grant_changed below)."""
    grant.delete()


# --- changes made outside these services -----------------------------------------
# Users, groups and grants are also edited through Django's own admin and auth
# views (deactivate a user, remove them from a group, log out, change a
# password), which call no service of ours. These receivers turn those edits
# into the same announcement; connected once from runs.apps.


def _user_saved(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login saves last_login; access is unchanged
    access_changed_on_commit(user_ids=[instance.pk])


def _user_removed(sender, instance, **kwargs):
    access_changed_on_commit(user_ids=[instance.pk])


def _memberships_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # group.user_set changed: pk_set are users (None on clear: every member)
        users = pk_set if pk_set is not None else _members([instance.pk])
    else:
        users = [instance.pk]
    access_changed_on_commit(user_ids=users)


def _grant_changed(sender, instance, **kwargs):
    access_changed_on_commit(user_ids=_members([instance.group_id]))


def _group_deleting(sender, instance, **kwargs):
    access_changed_on_commit(user_ids=_members([instance.pk]))


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        access_changed_on_commit(user_ids=[user.pk])


def connect_access_signals() -> None:
    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="pipelens.access.user_saved")
    post_delete.connect(_user_removed, sender=user_model, dispatch_uid="pipelens.access.user_removed")
    m2m_changed.connect(
        _memberships_changed, sender=user_model.groups.through, dispatch_uid="pipelens.access.memberships"
    )
    post_save.connect(_grant_changed, sender=BucketGrant, dispatch_uid="pipelens.access.grant_saved")
    post_delete.connect(_grant_changed, sender=BucketGrant, dispatch_uid="pipelens.access.grant_deleted")
    pre_delete.connect(_group_deleting, sender=Group, dispatch_uid="pipelens.access.group_deleting")
    user_logged_out.connect(_logged_out, dispatch_uid="pipelens.access.logged_out")
