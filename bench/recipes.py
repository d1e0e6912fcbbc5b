"""Recipes (docs/recipes.md): the sandbox's start-up overhead and the calibration starter.

- sandbox_overhead_ms: an empty recipe (returns a constant) through the real
  bubblewrap sandbox, median of 20: the cost of a fresh child with namespaces,
  rlimits and the harness.
- calibration_ms: "run" to rendition stored, median of 20, for the calibration
  starter recipe on a 100,000-row predictions CSV in the real MinIO: the
  three steps of a run (render worker: claim, read the object from MinIO;
  sandbox worker: the job through JSON as over the broker, base64 input,
  sandbox; render worker: PNG to the preview bucket, rendition ready,
  after-commit push), measured in-process (``recipe_run_execute``; the two
  Redis hops between the workers add a few ms and are not included).

Last line: {"runs": 20, "sandbox_overhead_ms": …, "calibration_ms": …}.
"""

import io
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import setup_django  # noqa: E402

RUNS = 20


def main():
    setup_django("bench")
    os.environ.setdefault("RECIPES_ENABLED", "true")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from runs.models import Artifact, Recipe, Rendition
    from runs.sandbox.runner import Limits, run_recipe
    from runs.services import recipes as service
    from runs.services.buckets import bucket_register
    from runs.services.ingest import ingest_events
    from runs.storage import minio_client
    from tests.factories import object_event

    settings.RECIPES_ENABLED = True
    overhead = []
    for _ in range(RUNS + 1):
        t = time.perf_counter()
        r = run_recipe(
            source="def render(path, meta):\n    return '<p>ok</p>'\n",
            data=b"",
            filename="empty",
            meta={},
            venv=settings.SANDBOX_VENV,
            limits=Limits(),
        )
        assert r.ok, (r.reason, r.message, r.stderr)
        overhead.append((time.perf_counter() - t) * 1000)
    overhead = overhead[1:]  # the first run warms the page cache

    rng = random.Random(7)
    lines = ["label,score"]
    for _ in range(100_000):
        s = rng.random()
        lines.append(f"{int(rng.random() < s)},{s:.6f}")
    data = ("\n".join(lines) + "\n").encode()
    name = f"bench-recipes-{uuid.uuid4().hex[:8]}"
    bucket = bucket_register(name=name)
    client = minio_client()
    key = "bench/eval/predictions.csv"
    put = client.put_object(name, key, io.BytesIO(data), len(data), content_type="text/csv")
    # Stored as the consumer would store its event (the bench needs no consumer running).
    ingest_events(
        events=[object_event(name, key, etag=put.etag.strip('"'), size=len(data), content_type="text/csv")]
    )
    artifact = Artifact.objects.get(bucket=bucket, key=key)
    owner, _ = get_user_model().objects.get_or_create(username="bench-recipes")
    recipe = next(r for r in service.recipes_install_starters(owner=owner) if r.name == "Calibration curve")
    calibration = []
    try:
        for _ in range(RUNS):
            t = time.perf_counter()
            run = service.recipe_run_request(recipe=recipe, artifact=artifact, force=True)
            status = service.recipe_run_execute(run_id=run.pk)
            calibration.append((time.perf_counter() - t) * 1000)
            rendition = Rendition.objects.get(
                artifact=artifact, viewer="recipe", payload__recipe_id=recipe.pk
            )
            run.refresh_from_db()
            assert status == "ok" and rendition.status == "ready", (status, run.reason, run.message[:300])
    finally:
        for obj in client.list_objects(name, recursive=True):
            client.remove_object(name, obj.object_name)
        client.remove_bucket(name)
        bucket.delete()
        Recipe.objects.filter(owner=owner).delete()
    result = {
        "runs": RUNS,
        "sandbox_overhead_ms": round(statistics.median(overhead), 1),
        "calibration_ms": round(statistics.median(calibration), 1),
        "calibration_p90_ms": round(sorted(calibration)[int(RUNS * 0.9) - 1], 1),
        "csv_rows": 100_000,
        "csv_bytes": len(data),
        "cores": os.cpu_count(),
    }
    print(f"sandbox start-up (empty recipe), median of {RUNS}: {result['sandbox_overhead_ms']} ms")
    print(f"calibration recipe, 100,000 rows, run -> rendition ready, median: {result['calibration_ms']} ms")
    import json

    print(json.dumps(result))


if __name__ == "__main__":
    main()
