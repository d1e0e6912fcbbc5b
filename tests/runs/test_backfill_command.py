"""``manage.py backfill`` as an operator runs it: a real process, real MinIO, killed and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from runs.models import Artifact, BucketSweep, Run
from tests.helpers import database_url, put, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
RUN = "v2/artifacts/train/6f1e0c9a-aaaa-4bbb-8ccc-0123456789ab"


@pytest.fixture
def bucket(registered_bucket):
    return registered_bucket


def _fill(minio, bucket, count: int) -> list[str]:
    keys = [f"{RUN}/task-{i % 5}/out-{i:04d}.txt" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: put(minio, bucket.name, k, k.encode()), keys))
    return keys


def _backfill(bucket, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vizsite.settings.test", "DATABASE_URL": database_url()}
    return subprocess.Popen(
        [sys.executable, "manage.py", "backfill", bucket.name, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_backfill_resumes_to_the_same_end_state(minio, bucket):
    keys = _fill(minio, bucket, 600)
    proc = _backfill(bucket, "--page-size", "5", "--no-count")
    wait_for(
        lambda: BucketSweep.objects.filter(bucket=bucket, listed__gte=50).exists() or proc.poll() is not None,
        what="the backfill half-way",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed = BucketSweep.objects.get(bucket=bucket)
    assert killed.status == BucketSweep.Status.RUNNING, "finished before it could be killed"
    assert 0 < Artifact.objects.filter(bucket=bucket).count() < len(keys)

    again = _backfill(bucket, "--page-size", "50")
    out, err = again.communicate(timeout=120)

    assert again.returncode == 0, err
    assert "done: 600 listed" in out, out
    assert "listed" in err and "objects/s" in err
    sweep = BucketSweep.objects.get(pk=killed.pk)
    assert sweep.status == BucketSweep.Status.DONE and sweep.started_at == killed.started_at
    stored = list(Artifact.objects.filter(bucket=bucket).values_list("key", flat=True))
    assert sorted(stored) == sorted(keys)  # no duplicates, none missing
    run = Run.objects.get(bucket=bucket)
    assert run.artifact_count == 600 and run.steps.count() == 5


def test_interrupted_backfill_says_how_to_resume(minio, bucket):
    _fill(minio, bucket, 300)
    proc = _backfill(bucket, "--page-size", "3", "--no-count")
    wait_for(lambda: BucketSweep.objects.filter(bucket=bucket, listed__gte=30).exists(), what="progress")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err


def test_since_imports_only_newer_objects_and_deletes_nothing(minio, bucket):
    put(minio, bucket.name, "run-old/step/a.txt")
    call_command("backfill", bucket.name, "--no-count")
    minio.remove_object(bucket.name, "run-old/step/a.txt")
    put(minio, bucket.name, "run-new/step/b.txt")

    call_command("backfill", bucket.name, "--since", "2999-01-01", "--no-count")
    assert not Artifact.objects.filter(bucket=bucket, key="run-new/step/b.txt").exists()
    assert not Artifact.objects.get(bucket=bucket, key="run-old/step/a.txt").deleted

    call_command("backfill", bucket.name, "--since", "2020-01-01", "--no-count")
    assert Artifact.objects.filter(bucket=bucket, key="run-new/step/b.txt").exists()
    assert not Artifact.objects.get(bucket=bucket, key="run-old/step/a.txt").deleted


def test_unregistered_bucket_and_bad_date_are_clear_errors(bucket):
    with pytest.raises(CommandError, match="not registered in Pipelens"):
        call_command("backfill", "no-such-bucket-anywhere")
    with pytest.raises(CommandError, match="is not a date"):
        call_command("backfill", bucket.name, "--since", "last tuesday")
