"""References between KFP metadata files and the files they name (docs/viewers.md, "References").

Two reads: ``references_effective`` (the reference that decides a file's kind
and how it is shown; the rendition service asks it) and ``references_attach``
(what a reader sees on each side, with the access rule applied: a reference
into, or from, a run the reader may not see never shows that run's names).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, Q
from django.urls import reverse

from runs.layouts import UnresolvableKey, resolve_key
from runs.models import Artifact, ArtifactReference, Bucket
from runs.selectors.access import AccessScope, access_scope_for


def _targets_q(pairs: Iterable[tuple[int, str]]) -> Q | None:
    by_bucket: dict[int, set[str]] = {}
    for bucket_id, key in pairs:
        by_bucket.setdefault(bucket_id, set()).add(key)
    q = None
    for bucket_id, keys in by_bucket.items():
        term = Q(bucket_id=bucket_id, key__in=sorted(keys))
        q = term if q is None else q | term
    return q


def _current(queryset):
    """References of the current version of a metadata file that still exists."""
    return queryset.filter(source__deleted=False, source_etag=F("source__etag"))


def references_effective(*, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], ArtifactReference]:
    """For each (bucket id, key), the reference that decides its kind: the newest one of a current
    metadata file of the same run (``same_run``). Pairs without one are absent."""
    q = _targets_q(pairs)
    if q is None:
        return {}
    found: dict[tuple[int, str], ArtifactReference] = {}
    for ref in _current(ArtifactReference.objects.filter(q, same_run=True)).order_by("-id"):
        found.setdefault((ref.bucket_id, ref.key), ref)
    return found


def reference_sources_to_retry(*, pairs: Iterable[tuple[int, str]]) -> list[int]:
    """Ids of current metadata files that reference one of these (bucket id, key) pairs: a file
    they named has just been written, so renditions that failed for want of it can now succeed."""
    q = _targets_q(pairs)
    if q is None:
        return []
    return sorted(set(_current(ArtifactReference.objects.filter(q)).values_list("source_id", flat=True)))


@dataclass(frozen=True, slots=True)
class ShownReference:
    """One line of an artifact's references, as a reader may see it."""

    title: str  # what the metadata calls it: "ROC curve", "Table", …
    name: str = ""  # the other artifact's name; "" when hidden
    url: str = ""  # its page; "" when hidden or not written yet
    run: str = ""  # its run's name when it is another run
    hidden: bool = False  # in a run the reader may not see: no name, no link
    missing: bool = False  # referenced, but no such object was written (yet)


def _visible(scope: AccessScope, *, bucket_id: int, run_key: str, namespace: str) -> bool:
    return scope.allows(bucket_id=bucket_id, run_key=run_key, namespace=namespace)


def references_attach(*, user, artifacts: list[Artifact]) -> None:
    """Set ``referenced_by`` and ``references_out`` (lists of ``ShownReference``) on each artifact
    (their ``run`` loaded), for ``user``: two queries when there is none, six at most.

    ``referenced_by``: the current metadata files that name this artifact, only those in runs the
    reader may see (the others are left out: the reader of a file learns nothing of who else
    points at it). ``references_out``: the files this artifact's current version names; one in a
    run the reader may not see is listed as hidden, without its name.
    """
    for artifact in artifacts:
        artifact.referenced_by, artifact.references_out = [], []
    if not artifacts:
        return
    by_target = {(a.bucket_id, a.key): a for a in artifacts}
    incoming = list(
        _current(
            ArtifactReference.objects.filter(_targets_q(by_target)).select_related("source__run")
        ).order_by("source__key", "position")
    )
    by_id = {a.pk: a for a in artifacts}
    outgoing = list(
        ArtifactReference.objects.filter(
            source_id__in=list(by_id), source_etag__in={a.etag for a in artifacts}
        ).order_by("position", "key")
    )
    outgoing = [r for r in outgoing if r.source_etag == by_id[r.source_id].etag]
    if not incoming and not outgoing:
        return  # the common case: two queries
    scope = access_scope_for(user=user)
    for ref in incoming:
        target, source = by_target[(ref.bucket_id, ref.key)], ref.source
        if source.pk == target.pk or not _visible(
            scope, bucket_id=source.run.bucket_id, run_key=source.run.run_key, namespace=source.run.namespace
        ):
            continue
        target.referenced_by.append(
            ShownReference(
                title=ref.title,
                name=source.name,
                url=reverse("runs:artifact", args=[source.run_id, source.pk]),
                run=source.run.name if source.run_id != target.run_id else "",
            )
        )
    if not outgoing:
        return
    existing = {
        (a.bucket_id, a.key): a
        for a in Artifact.objects.filter(_targets_q((r.bucket_id, r.key) for r in outgoing), deleted=False)
        .select_related("run")
        .only("id", "bucket_id", "key", "name", "run_id", "run__name", "run__run_key", "run__namespace")
    }
    buckets = {b.pk: b for b in Bucket.objects.filter(pk__in={r.bucket_id for r in outgoing})}
    for ref in outgoing:
        source = by_id[ref.source_id]
        found = existing.get((ref.bucket_id, ref.key))
        if found is not None:
            run_key, namespace = found.run.run_key, found.run.namespace
        else:
            try:
                where = resolve_key(ref.key, buckets[ref.bucket_id].layouts)
            except (UnresolvableKey, ValueError, KeyError):
                source.references_out.append(ShownReference(title=ref.title, hidden=True))
                continue
            run_key, namespace = where.run_key, where.namespace
        if not _visible(scope, bucket_id=ref.bucket_id, run_key=run_key, namespace=namespace):
            source.references_out.append(ShownReference(title=ref.title, hidden=True))
        elif found is None:
            source.references_out.append(
                ShownReference(title=ref.title, name=ref.key.rsplit("/", 1)[-1], missing=True)
            )
        else:
            source.references_out.append(
                ShownReference(
                    title=ref.title,
                    name=found.name,
                    url=reverse("runs:artifact", args=[found.run_id, found.pk]),
                    run=found.run.name if found.run_id != source.run_id else "",
                )
            )
