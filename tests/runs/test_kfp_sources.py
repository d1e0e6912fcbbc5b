"""KFP metadata sources that point into other runs and buckets (issue 8, finding 3).

An attacker who can write one bucket's metadata files must learn nothing about
objects they may not see: not whether they exist, not how many match a pattern.
And a rendition built from another run's file is checked again for each reader.
"""

import io

import pytest
from django.contrib.auth.models import Group

from runs.models import Artifact, Rendition
from runs.rendering.base import RenderError
from runs.services.access import bucket_grant_create
from runs.services.buckets import bucket_register
from runs.services.renditions import fetch_sources
from tests.runs.portal_helpers import ingest, user_with_grant

pytestmark = pytest.mark.integration


@pytest.fixture
def buckets(transactional_db, minio, unique_name):
    """Team A's bucket (the attacker's group sees only it) and a private HR bucket."""
    made = []
    for prefix in ("team", "hr"):
        name = unique_name(prefix)
        minio.make_bucket(name)
        made.append(name)
    team, hr = (bucket_register(name=n) for n in made)
    for key in ("private/hr/alice.csv", "private/hr/albert.csv", "private/hr/bob.csv"):
        minio.put_object(hr.name, key, io.BytesIO(b"fpr,tpr\n0,0\n1,1\n"), 16)
    minio.put_object(team.name, "run-a/step/roc.csv", io.BytesIO(b"fpr,tpr\n0,0\n1,1\n"), 16)
    minio.put_object(team.name, "run-b/step/roc.csv", io.BytesIO(b"fpr,tpr\n0,0\n1,1\n"), 16)
    yield team, hr
    for name in made:
        for obj in minio.list_objects(name, recursive=True):
            minio.remove_object(name, obj.object_name)
        minio.remove_bucket(name)


def _artifact(bucket, key):
    ingest(bucket, key)
    artifact = Artifact.objects.select_related("run", "bucket").get(bucket=bucket, key=key)
    return artifact


def _answer(artifact, uri) -> str:
    with pytest.raises(RenderError) as err:
        fetch_sources(artifact=artifact, uri=uri)
    return str(err.value).replace(uri, "<uri>")


def test_probing_another_bucket_gets_one_answer_for_everything(buckets, django_user_model):
    team, hr = buckets
    user_with_grant(django_user_model, "attacker", team)
    user_with_grant(django_user_model, "hr-staff", hr)
    artifact = _artifact(team, "run-a/step/mlpipeline-ui-metadata.json")
    answers = {
        _answer(artifact, f"minio://{hr.name}/private/hr/a*"),  # two objects match
        _answer(artifact, f"minio://{hr.name}/private/hr/al*"),
        _answer(artifact, f"minio://{hr.name}/private/hr/z*"),  # none match
        _answer(artifact, f"minio://{hr.name}/private/hr/alice.csv"),  # exists
        _answer(artifact, f"minio://{hr.name}/private/hr/nobody.csv"),  # does not
        _answer(artifact, "minio://not-registered-anywhere/x.csv"),
    }
    assert len(answers) == 1, answers
    assert "not available to this run's viewers" in answers.pop()


def test_a_source_every_viewer_may_see_is_read_and_only_visible_keys_count(buckets, django_user_model):
    team, _hr = buckets
    whole = Group.objects.create(name="whole-team")
    bucket_grant_create(group=whole, bucket=team)
    artifact = _artifact(team, "run-a/step/mlpipeline-ui-metadata.json")
    found = fetch_sources(artifact=artifact, uri=f"minio://{team.name}/run-*/step/roc.csv")
    assert [s.key for s in found] == ["run-a/step/roc.csv", "run-b/step/roc.csv"]
    # Once some viewer of run-a may not see run-b, run-b is neither read nor counted.
    user_with_grant(django_user_model, "narrow", team, key_prefix="run-a")
    found = fetch_sources(artifact=artifact, uri=f"minio://{team.name}/run-*/step/roc.csv")
    assert [s.key for s in found] == ["run-a/step/roc.csv"]


def test_a_cross_run_rendition_is_hidden_from_a_reader_who_may_not_see_the_source(
    buckets, django_user_model, client
):
    from django.urls import reverse

    team, _hr = buckets
    group = Group.objects.create(name="team")
    bucket_grant_create(group=group, bucket=team)
    artifact = _artifact(team, "run-a/step/mlpipeline-ui-metadata.json")
    rendition = Rendition.objects.create(
        artifact=artifact,
        etag=artifact.etag,
        viewer="roc",
        status=Rendition.Status.READY,
        payload={"auc": 0.5, "curves": [], "cross_run_sources": [[team.name, "run-b/step/roc.csv"]]},
    )
    # Later, a reader whose grant covers run-a only.
    narrow = user_with_grant(django_user_model, "narrow", team, key_prefix="run-a")
    client.force_login(narrow)
    preview = client.get(
        reverse("runs:artifact_preview", args=[artifact.run_id, artifact.pk])
    ).content.decode()
    assert "another run that you may not see" in preview and "0.5" not in preview
    # A reader of both runs sees it.
    wide = django_user_model.objects.create_user("wide", password="pw")
    wide.groups.add(group)
    client.force_login(wide)
    preview = client.get(
        reverse("runs:artifact_preview", args=[artifact.run_id, artifact.pk])
    ).content.decode()
    assert "another run that you may not see" not in preview
    assert rendition.pk
