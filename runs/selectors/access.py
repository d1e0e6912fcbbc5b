"""Who may see which runs: the one access decision (docs/portal.md#access, docs/security.md).

Pages, JSON, downloads, previews, WebSocket subscriptions and KFP sources all
ask here. A grant shows a group the runs of one bucket, optionally only those
under a key prefix (matched on path-segment boundaries) and/or of one
namespace. ``grant_q`` (a database filter) and ``grant_allows`` (a pure
predicate, for the runs-list socket which filters pushes without a query)
are written side by side below; tests/runs/test_access.py
checks that they agree on a table of cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db.models import Q, QuerySet
from django.utils.crypto import constant_time_compare

from runs.models import Artifact, BucketGrant, Run


def normalize_prefix(prefix: str) -> str:
    """A grant's key prefix as stored: no surrounding spaces or slashes ("" = the whole bucket)."""
    return prefix.strip().strip("/")


# --- the grant rule: one definition, two renderings --------------------------------
# A grant (bucket id, prefix, namespace) shows a run when the run is in the
# bucket, its run key is the prefix or lies below it ("team-x" shows
# "team-x" and "team-x/…", never "team-xavier"), and, if the grant names a
# namespace, the run is in it. Empty prefix or namespace: no condition.


def grant_q(*, bucket_id: int, prefix: str, namespace: str) -> Q:
    """The grant rule as a filter on Run rows."""
    term = Q(bucket_id=bucket_id)
    prefix = normalize_prefix(prefix)
    if prefix:
        term &= Q(run_key=prefix) | Q(run_key__startswith=prefix + "/")
    if namespace:
        term &= Q(namespace=namespace)
    return term


def grant_allows(
    *, bucket_id: int, prefix: str, namespace: str, run_bucket_id: int, run_key: str, run_namespace: str
) -> bool:
    """The grant rule as a predicate on one run's (bucket id, run key, namespace)."""
    if run_bucket_id != bucket_id:
        return False
    prefix = normalize_prefix(prefix)
    if prefix and run_key != prefix and not run_key.startswith(prefix + "/"):
        return False
    return not namespace or run_namespace == namespace


@dataclass(frozen=True, slots=True)
class AccessScope:
    """What one user may see: everything (superuser) or the union of grants.

    ``run_filter`` for database reads (``runs_visible_to``), ``allows`` for the
    runs-list socket, which filters pushed summaries without a query.
    """

    everything: bool = False
    # (bucket id, key prefix or "", namespace or "")
    grants: tuple[tuple[int, str, str], ...] = ()

    def allows(self, *, bucket_id: int, run_key: str, namespace: str) -> bool:
        if self.everything:
            return True
        return any(
            grant_allows(
                bucket_id=b,
                prefix=p,
                namespace=ns,
                run_bucket_id=bucket_id,
                run_key=run_key,
                run_namespace=namespace,
            )
            for b, p, ns in self.grants
        )

    def run_filter(self) -> Q | None:
        """A filter on Run rows; None means "nothing" (no grant at all)."""
        if self.everything:
            return Q()
        q = None
        for b, p, ns in self.grants:
            term = grant_q(bucket_id=b, prefix=p, namespace=ns)
            q = term if q is None else q | term
        return q


def access_scope_for(*, user) -> AccessScope:
    """The runs ``user`` may see. Anonymous and inactive users see nothing."""
    if user is None or not user.is_authenticated or not user.is_active:
        return AccessScope()
    if user.is_superuser:
        return AccessScope(everything=True)
    rows = BucketGrant.objects.filter(group__user=user).values_list("bucket_id", "key_prefix", "namespace")
    return AccessScope(grants=tuple(sorted(set(rows))))


def runs_visible_to(*, user, scope: AccessScope | None = None) -> QuerySet[Run]:
    """Every run ``user`` may see; the only entry to runs for anything a user reads."""
    scope = scope or access_scope_for(user=user)
    q = scope.run_filter()
    if q is None:
        return Run.objects.none()
    return Run.objects.filter(q)


def run_get_visible(*, user, run_id: int) -> Run | None:
    """The run, if it exists and ``user`` may see it; None otherwise (callers answer 404)."""
    return runs_visible_to(user=user).select_related("bucket").filter(pk=run_id).first()


def artifact_get_visible(*, user, run_id: int, artifact_id: int) -> Artifact | None:
    """An artifact of a run ``user`` may see, or None."""
    run = run_get_visible(user=user, run_id=run_id)
    if run is None:
        return None
    artifact = Artifact.objects.select_related("step").filter(pk=artifact_id, run_id=run.pk).first()
    if artifact is not None:
        artifact.run = run
        artifact.bucket = run.bucket
    return artifact


def session_user_get(*, session_key: str | None):
    """The active user a session is still logged in as, or None.

    None when the session ended (logout, expiry), the user was deactivated or
    deleted, or the password changed since the session logged in (Django's
    session auth hash no longer matches). Open sockets ask this again when
    access may have changed (runs.services.changes.access_changed_on_commit).
    """
    if not session_key:
        return None
    data = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key).load()
    user_id = data.get(SESSION_KEY)
    if user_id is None:
        return None
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None or not constant_time_compare(
        data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return None
    return user


def sources_visible(*, scope: AccessScope, sources: list) -> bool:
    """Whether ``scope`` may see the run of each ``[bucket name, key]`` (KFP sources that a
    rendition read from other runs: checked again for each reader, issue 8 finding 3)."""
    from runs.layouts import UnresolvableKey, resolve_key
    from runs.models import Bucket

    if scope.everything:
        return True
    buckets = {b.name: b for b in Bucket.objects.filter(name__in={name for name, _ in sources})}
    for name, key in sources:
        bucket = buckets.get(name)
        if bucket is None:
            return False
        try:
            where = resolve_key(key, bucket.layouts)
        except (UnresolvableKey, ValueError):
            return False
        if not scope.allows(bucket_id=bucket.pk, run_key=where.run_key, namespace=where.namespace):
            return False
    return True


def grant_preview(
    *, bucket_id: int, key_prefix: str, namespace: str, limit: int = 50
) -> tuple[int, list[Run]]:
    """How many runs a grant with this scope would show, and the newest ``limit`` of them:
    the grant rule itself (``grant_q``), for the console's preview before granting."""
    runs = Run.objects.filter(grant_q(bucket_id=bucket_id, prefix=key_prefix, namespace=namespace.strip()))
    return runs.count(), list(runs.order_by("-last_event_at")[:limit])
