"""Access rules across pages, JSON, previews, downloads and sockets (docs/security.md).

A grant on bucket A shows nothing of bucket B; a prefix or namespace grant
narrows to that prefix or namespace; a run one may not see answers 404, the
same as a run that does not exist.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from runs.models import Run
from runs.selectors.access import AccessScope, access_scope_for, runs_visible_to
from runs.services.access import bucket_grant_create
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant

pytestmark = pytest.mark.django_db

V1 = "artifacts/{wf}/2026/11/29/{wf}-1/out.tgz"
PRIVATE = "private-artifacts/{ns}/{wf}/2026/11/29/{wf}-1/out.tgz"


def urls_of(run):
    art = run.artifacts.get()
    return {
        "page": reverse("runs:detail", args=[run.pk]),
        "artifact": reverse("runs:artifact", args=[run.pk, art.pk]),
        "preview": reverse("runs:artifact_preview", args=[run.pk, art.pk]),
        "download": reverse("runs:artifact_download", args=[run.pk, art.pk]),
        "state": reverse("runs:api_run_state", args=[run.pk]),
    }


@pytest.fixture
def buckets():
    a, b = BucketFactory(name="bucket-a"), BucketFactory(name="bucket-b")
    ingest(a, "team-x/s/a.txt", "team-y/s/b.txt")
    ingest(b, "secret/s/c.txt")
    return a, b


def test_a_grant_on_bucket_a_shows_nothing_of_bucket_b(client, django_user_model, buckets):
    a, b = buckets
    client.force_login(user_with_grant(django_user_model, "alice", a))
    listing = client.get("/").content.decode()
    assert "team-x" in listing and "team-y" in listing and "secret" not in listing
    assert "bucket-b" not in listing  # not even as a filter choice
    for name, url in urls_of(run_of(b, "secret")).items():
        response = client.get(url)
        assert response.status_code == 404, name
    # The same answer as for a run that does not exist: existence does not leak.
    assert (
        client.get(reverse("runs:api_run_state", args=[run_of(b, "secret").pk])).json()
        == client.get(reverse("runs:api_run_state", args=[999999999])).json()
        == {"error": "no such run"}
    )
    for name, url in urls_of(run_of(a, "team-x")).items():
        if name != "download":  # needs a real object; tests/runs/test_views.py streams one
            assert client.get(url).status_code == 200, name


def test_a_prefix_grant_limits_to_that_prefix(client, django_user_model, buckets):
    a, _b = buckets
    client.force_login(user_with_grant(django_user_model, "xavier", a, key_prefix="team-x"))
    listing = client.get("/").content.decode()
    assert "team-x" in listing and "team-y" not in listing
    assert client.get(urls_of(run_of(a, "team-x"))["page"]).status_code == 200
    for name, url in urls_of(run_of(a, "team-y")).items():
        assert client.get(url).status_code == 404, name


def test_a_namespace_grant_limits_to_that_namespace(client, django_user_model):
    bucket = BucketFactory(name="mlpipeline")
    ingest(
        bucket, PRIVATE.format(ns="kubeflow-alice", wf="wf-a"), PRIVATE.format(ns="kubeflow-bob", wf="wf-b")
    )
    mine = Run.objects.get(namespace="kubeflow-alice")
    theirs = Run.objects.get(namespace="kubeflow-bob")
    client.force_login(user_with_grant(django_user_model, "alice", bucket, namespace="kubeflow-alice"))
    listing = client.get("/").content.decode()
    assert "wf-a" in listing and "wf-b" not in listing
    assert "kubeflow-bob" not in listing and "kubeflow-alice" in listing
    assert client.get(urls_of(mine)["state"]).status_code == 200
    for name, url in urls_of(theirs).items():
        assert client.get(url).status_code == 404, name


def test_grants_add_up_over_groups_superusers_see_all_and_no_grant_sees_nothing(django_user_model, buckets):
    a, b = buckets
    nobody = user_with_grant(django_user_model, "nobody")
    assert list(runs_visible_to(user=nobody)) == []
    both = user_with_grant(django_user_model, "both", a, key_prefix="team-y")
    other = Group.objects.create(name="b-readers")
    bucket_grant_create(group=other, bucket=b)
    both.groups.add(other)
    assert sorted(r.run_key for r in runs_visible_to(user=both)) == ["secret", "team-y"]
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    assert runs_visible_to(user=root).count() == 3
    inactive = user_with_grant(django_user_model, "gone", a)
    inactive.is_active = False
    inactive.save()
    assert access_scope_for(user=inactive) == AccessScope()


def test_prefix_grant_matches_literally_not_as_a_pattern(django_user_model):
    bucket = BucketFactory(name="b")
    ingest(bucket, "a_b/s/x.txt", "axb/s/y.txt", "a%b/s/z.txt")
    user = user_with_grant(django_user_model, "u", bucket, key_prefix="a_b")
    assert [r.run_key for r in runs_visible_to(user=user)] == ["a_b"]
    scope = access_scope_for(user=user)
    assert scope.allows(bucket_id=bucket.pk, run_key="a_b", namespace="")
    assert not scope.allows(bucket_id=bucket.pk, run_key="axb", namespace="")
    assert not scope.allows(bucket_id=bucket.pk + 1, run_key="a_b", namespace="")


def test_prefix_grants_end_on_path_segment_boundaries(django_user_model):
    """A grant on ``team-x`` never shows ``team-xavier`` or ``team-x-secret``, and a grant on
    ``artifacts/train`` never shows the KFP run ``artifacts/training-hr-…`` (issue 8, finding 2)."""
    bucket = BucketFactory(name="b")
    ingest(
        bucket,
        "team-x/s/a.txt",
        "team-xavier/s/b.txt",
        "team-x-secret/s/c.txt",
        V1.format(wf="train"),
        V1.format(wf="training-hr-7"),
    )
    team = user_with_grant(django_user_model, "team", bucket, key_prefix="team-x")
    assert [r.run_key for r in runs_visible_to(user=team)] == ["team-x"]
    kfp = user_with_grant(django_user_model, "kfp", bucket, key_prefix="artifacts/train/")
    assert [r.run_key for r in runs_visible_to(user=kfp)] == ["artifacts/train"]
    whole = user_with_grant(django_user_model, "whole", bucket, key_prefix="artifacts")
    assert sorted(r.run_key for r in runs_visible_to(user=whole)) == [
        "artifacts/train",
        "artifacts/training-hr-7",
    ]
    # The socket's predicate says the same.
    scope = access_scope_for(user=team)
    assert not scope.allows(bucket_id=bucket.pk, run_key="team-xavier", namespace="")
    assert not scope.allows(bucket_id=bucket.pk, run_key="team-x-secret", namespace="")


# (grant prefix, grant namespace, run bucket is the grant's, run key, run namespace) -> shown
GRANT_CASES = [
    ("", "", True, "anything/at/all", "", True),
    ("", "", False, "anything", "", False),
    ("team-x", "", True, "team-x", "", True),
    ("team-x", "", True, "team-x/sub/run", "", True),
    ("team-x", "", True, "team-xavier", "", False),
    ("team-x", "", True, "team-x-secret", "", False),
    ("team-x/", "", True, "team-x", "", True),
    ("/team-x/", "", True, "team-x/a", "", True),
    ("team-x", "", False, "team-x", "", False),
    ("artifacts/train", "", True, "artifacts/train", "", True),
    ("artifacts/train", "", True, "artifacts/training-hr-1", "", False),
    ("artifacts", "", True, "artifacts/training-hr-1", "", True),
    ("a_b", "", True, "axb", "", False),
    ("a%b", "", True, "a%b", "", True),
    ("a%b", "", True, "aXYb", "", False),
    ("", "kubeflow-alice", True, "private-artifacts/kubeflow-alice/wf", "kubeflow-alice", True),
    ("", "kubeflow-alice", True, "private-artifacts/kubeflow-bob/wf", "kubeflow-bob", False),
    ("", "kubeflow-alice", True, "plain", "", False),
    (
        "private-artifacts/kubeflow-alice",
        "kubeflow-alice",
        True,
        "private-artifacts/kubeflow-alice/wf",
        "kubeflow-alice",
        True,
    ),
    (
        "private-artifacts/kubeflow-alice",
        "kubeflow-bob",
        True,
        "private-artifacts/kubeflow-alice/wf",
        "kubeflow-alice",
        False,
    ),
    (
        "private-artifacts/kubeflow-al",
        "",
        True,
        "private-artifacts/kubeflow-alice/wf",
        "kubeflow-alice",
        False,
    ),
]


def test_the_database_filter_and_the_predicate_agree_on_every_grant_case():
    """``grant_q`` (pages, API) and ``grant_allows`` (the runs-list socket) are one rule."""
    from django.utils import timezone

    from runs.selectors.access import grant_allows, grant_q

    mine, other = BucketFactory(name="mine"), BucketFactory(name="other")
    now = timezone.now()
    for i, (prefix, ns, same_bucket, run_key, run_ns, shown) in enumerate(GRANT_CASES):
        run = Run.objects.create(
            bucket=mine if same_bucket else other,
            run_key=f"{run_key}",
            name=str(i),
            namespace=run_ns,
            layout="generic",
            first_event_at=now,
            last_event_at=now,
        )
        in_db = Run.objects.filter(
            grant_q(bucket_id=mine.pk, prefix=prefix, namespace=ns), pk=run.pk
        ).exists()
        in_python = grant_allows(
            bucket_id=mine.pk,
            prefix=prefix,
            namespace=ns,
            run_bucket_id=run.bucket_id,
            run_key=run_key,
            run_namespace=run_ns,
        )
        assert in_db == in_python == shown, (prefix, ns, same_bucket, run_key, run_ns)
        run.delete()
