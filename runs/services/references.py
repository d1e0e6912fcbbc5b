"""References from KFP metadata files to the files they name: the only writer of
``ArtifactReference`` rows (docs/viewers.md, "References").

The rendition service records a metadata file's references when it renders
the file (``references_record``), whether or not the named objects exist yet.
A reference changes the named file in two ways, whichever arrives first:

- its kind: a file named by a metadata file *of its own run* takes the kind the
  metadata gives it (a ``roc.csv`` referenced as ``roc`` is a ROC curve, not a
  table) and is shown with the output's options (schema, labels). References
  from other runs are shown but change nothing: no pipeline may restyle another
  run's files;
- what its page shows: "referenced by <metadata file> as <title>".

When references change, the named files that exist get their kind here and
are rendered again by the rendition service (their kind or their "referenced
by" line changed; new renditions are what makes open pages fetch the preview
again). When a named file arrives after its metadata file,
``renditions_prepare`` gives it its kind and renders again the metadata files
that name it, whose outputs could not be read before.
"""

from __future__ import annotations

import json
import logging
import re

from django.db import transaction

from runs import kinds
from runs.layouts import UnresolvableKey, resolve_key
from runs.models import Artifact, ArtifactReference, Bucket
from runs.rendering.kfp_metadata import REFERENCE_KINDS, REFERENCE_TITLES
from runs.selectors.references import references_effective
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.render")

_URI = re.compile(r"^(minio|s3)://([^/]+)/(.+)$")
_WILDCARD = re.compile(r"[*?\[]")
# Options (schema, labels, header) are kept up to this size; larger ones keep the type only.
OPTIONS_MAX_BYTES = 64 * 1024


def _options(options: dict) -> dict:
    try:
        size = len(json.dumps(options, allow_nan=False))
    except (TypeError, ValueError):
        size = OPTIONS_MAX_BYTES + 1
    return options if size <= OPTIONS_MAX_BYTES else {"type": options.get("type")}


def _rows(
    *, artifact: Artifact, referred: list[tuple[int, str, dict]], fetched: dict[str, list[str]]
) -> list[ArtifactReference]:
    """The reference rows of one rendered metadata version. A wildcard source counts the objects
    it matched (those its viewers may see, as read); an exact one counts even before it exists."""
    names = {m.group(2) for _p, uri, _o in referred if (m := _URI.match(uri))}
    buckets = {b.name: b for b in Bucket.objects.filter(name__in=names)}
    rows: dict[tuple[int, int, str], ArtifactReference] = {}
    for position, uri, options in referred:
        match = _URI.match(uri)
        kind = REFERENCE_KINDS.get(options.get("type"))
        bucket = buckets.get(match.group(2)) if match else None
        if bucket is None or kind is None:
            continue  # not an object of a registered bucket: nothing to link to
        pattern = match.group(3)
        keys = fetched.get(uri, []) if _WILDCARD.search(pattern) else [pattern]
        for key in keys[:1000]:
            if len(key) > 1024 or (bucket.pk == artifact.bucket_id and key == artifact.key):
                continue  # a metadata file naming itself references nothing
            try:
                same_run = (
                    bucket.pk == artifact.bucket_id
                    and resolve_key(key, bucket.layouts).run_key == artifact.run.run_key
                )
            except (UnresolvableKey, ValueError):
                same_run = False
            rows[(position, bucket.pk, key)] = ArtifactReference(
                source_id=artifact.pk,
                source_etag=artifact.etag,
                position=position,
                bucket_id=bucket.pk,
                key=key,
                kind=kind,
                title=REFERENCE_TITLES[options["type"]],
                options=_options(options),
                same_run=same_run,
            )
    return list(rows.values())


def _fingerprint(ref: ArtifactReference) -> tuple:
    return (
        ref.position,
        ref.bucket_id,
        ref.key,
        ref.kind,
        ref.same_run,
        json.dumps(ref.options, sort_keys=True),
    )


@transaction.atomic
def references_record(
    *, artifact_id: int, etag: str, referred: list[tuple[int, str, dict]], fetched: dict[str, list[str]]
) -> list[int]:
    """Replace the references of a metadata file's version ``etag`` with what its render found
    (``referred``: (output position, URI, options); ``fetched``: URI → keys read). Returns the
    ids of the named artifacts whose references changed (their kind is already updated here):
    the caller renders them again."""
    artifact = (
        Artifact.objects.select_for_update(of=("self",)).select_related("run").filter(pk=artifact_id).first()
    )
    if artifact is None or artifact.deleted or artifact.etag != etag:
        return []  # a newer version has its own render
    new = _rows(artifact=artifact, referred=referred, fetched=fetched)
    old = list(ArtifactReference.objects.filter(source_id=artifact_id))
    if sorted(map(_fingerprint, old)) == sorted(map(_fingerprint, new)) and all(
        r.source_etag == etag for r in old
    ):
        return []
    ArtifactReference.objects.filter(source_id=artifact_id).delete()
    ArtifactReference.objects.bulk_create(new)
    changed = {(fp[1], fp[2]) for fp in set(map(_fingerprint, old)) ^ set(map(_fingerprint, new))}
    targets = references_retarget(pairs=changed)
    log_event(
        logger, "references_recorded", artifact=artifact_id, references=len(new), retargeted=len(targets)
    )
    return targets


def references_retarget(*, pairs: set[tuple[int, str]]) -> list[int]:
    """Give the live artifacts at these (bucket id, key) pairs the kind their references decide
    (or their own, when none does any more); returns their ids, for the caller to render again."""
    if not pairs:
        return []
    by_bucket: dict[int, set[str]] = {}
    for bucket_id, key in pairs:
        by_bucket.setdefault(bucket_id, set()).add(key)
    targets = [
        a
        for bucket_id, keys in by_bucket.items()
        for a in Artifact.objects.filter(bucket_id=bucket_id, key__in=sorted(keys), deleted=False).only(
            "id", "bucket_id", "key", "name", "kind", "content_type", "run_id"
        )
    ]
    if not targets:
        return []
    effective = references_effective(pairs=[(a.bucket_id, a.key) for a in targets])
    for artifact in targets:
        if not kinds.restylable(artifact.name, artifact.content_type):
            continue  # shown as referenced (it is rendered again), never restyled
        ref = effective.get((artifact.bucket_id, artifact.key))
        kind = ref.kind if ref is not None else kinds.guess_kind(artifact.name, artifact.content_type)
        if kind != artifact.kind:
            Artifact.objects.filter(pk=artifact.pk).update(kind=kind)
    return [a.pk for a in targets]
