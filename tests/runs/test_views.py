"""Portal pages as a user sees them: accounts, runs list, run page, artifact page, state API."""

import html
import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Artifact, Rendition
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket():
    return BucketFactory(name="bucket-a")


@pytest.fixture
def alice(django_user_model, bucket, client):
    user = user_with_grant(django_user_model, "alice", bucket)
    client.force_login(user)
    return user


# --- accounts -------------------------------------------------------------------------


def test_every_page_sends_anonymous_users_to_login(client, bucket):
    ingest(bucket, "r1/s/a.txt")
    run = run_of(bucket, "r1")
    art = run.artifacts.get()
    for url in [
        reverse("runs:list"),
        reverse("runs:detail", args=[run.pk]),
        reverse("runs:artifact", args=[run.pk, art.pk]),
        reverse("runs:artifact_download", args=[run.pk, art.pk]),
        reverse("runs:artifact_preview", args=[run.pk, art.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), url
    response = client.get(reverse("runs:api_run_state", args=[run.pk]))
    assert response.status_code == 401 and response.json() == {"error": "authentication required"}


def test_login_logout_and_password_change(client, django_user_model):
    django_user_model.objects.create_user(username="bob", password="old-secret-123")
    page = client.get(reverse("login"))
    assert b"Log in" in page.content and b"csrfmiddlewaretoken" in page.content
    response = client.post(reverse("login"), {"username": "bob", "password": "old-secret-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "old-secret-123",
            "new_password1": "n3w-Secret-xyz",
            "new_password2": "n3w-Secret-xyz",
        },
    )
    assert response.status_code == 302
    assert client.get(reverse("logout")).status_code == 405  # logout is a POST, as Django intends
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302
    assert client.post(reverse("login"), {"username": "bob", "password": "n3w-Secret-xyz"}).status_code == 302


def test_wrong_password_shows_an_error_and_repeated_failures_lock_the_login(
    client, django_user_model, settings
):
    django_user_model.objects.create_user(username="carol", password="right-pass-123")
    response = client.post(reverse("login"), {"username": "carol", "password": "wrong"})
    assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("login"), {"username": "carol", "password": "wrong"})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content and b"15 minutes" in response.content
    # Even the right password is refused while locked.
    response = client.post(reverse("login"), {"username": "carol", "password": "right-pass-123"})
    assert response.status_code == 429
    assert client.get("/").status_code == 302


# --- runs list ------------------------------------------------------------------------


def test_runs_list_newest_activity_first_with_search_filters_and_pages(client, alice, bucket, settings):
    settings.RUNS_PAGE_SIZE = 2
    ingest(bucket, "artifacts/train-aaa/2026/11/29/train-aaa-1/out.tgz", seconds=0)
    ingest(bucket, "artifacts/eval-bbb/2026/11/29/eval-bbb-1/out.tgz", seconds=10)
    ingest(bucket, "artifacts/train-ccc/2026/11/29/train-ccc-1/out.tgz", seconds=20)

    page1 = client.get("/").content.decode()
    assert page1.index("train-ccc") < page1.index("eval-bbb") and "train-aaa" not in page1
    assert "3 runs" in page1
    older = re.search(r'<a href="\?([^"]*)" rel="next">Next', page1).group(1)
    assert "train-aaa" in client.get("/?" + html.unescape(older)).content.decode()
    found = client.get("/?q=TRAIN").content.decode()
    assert "train-aaa" in found and "train-ccc" in found and "eval-bbb" not in found
    oldest = client.get("/?sort=oldest").content.decode()
    assert oldest.index("train-aaa") < oldest.index("eval-bbb")
    today = timezone.now().date()
    assert (
        "No runs match these filters"
        in client.get(f"/?date_from={today + timedelta(days=1)}").content.decode()
    )
    assert "train-ccc" in client.get("/?date_from=2026-11-29&date_to=2026-11-29").content.decode()
    assert "No runs match" in client.get("/?bucket=other").content.decode()


def test_runs_list_rows_fragment_for_a_reconnecting_page(client, alice, bucket):
    ingest(bucket, "r1/s/a.txt")
    html = client.get("/", {"fragment": "rows"}).content.decode()
    assert html.lstrip().startswith('<tbody id="run-rows">') and "r1" in html and "<html" not in html


def test_runs_list_status_badges_and_filter(client, alice, bucket):
    from runs.services.lifecycle import runs_mark_idle

    ingest(bucket, "quiet/s/a.txt", seconds=0)
    ingest(bucket, "busy/s/a.txt", seconds=10_000)
    runs_mark_idle(now=run_of(bucket, "quiet").last_event_at + timedelta(hours=1))
    html = client.get("/").content.decode()
    assert '<span class="status status-idle" data-f="status">idle</span>' in html
    assert '<span class="status status-active" data-f="status">active</span>' in html
    idle = client.get("/?status=idle").content.decode()
    assert "quiet" in idle and "busy" not in idle
    assert "No runs match these filters" in client.get("/?status=succeeded").content.decode()
    # The filter offers a run's statuses, not a step's "done".
    assert '<option value="idle">' in html and '<option value="done">' not in html
    run = run_of(bucket, "quiet")
    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert page.count('class="status status-idle"') == 2  # the run and its step


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("status=done", 400, "Select a valid choice."),
        ("page=abc", 400, "Enter a whole number."),
        ("page=0", 400, "greater than or equal to 1"),
        ("page=99", 400, "Pages have no numbers any more: use the Next and Previous links."),
        ("after=not-a-page-link", 400, "This page link is damaged; start again from the first page."),
        ("sort=evil", 400, "Select a valid choice."),
        ("date_from=yesterday", 400, "Enter a valid date."),
        ("date_from=2026-12-01&date_to=2026-11-01", 400, "The start date is after the end date."),
        ("q=" + "x" * 201, 400, "at most 200 characters"),
    ],
)
def test_bad_list_parameters_give_a_clear_error(client, alice, bucket, query, status, message):
    ingest(bucket, "r1/s/a.txt")
    response = client.get("/?" + query)
    assert response.status_code == status
    assert message in response.content.decode()


# --- run page and artifacts -----------------------------------------------------------


def test_run_page_shows_steps_in_order_with_artifacts(client, alice, bucket):
    ingest(bucket, "r1/prepare/data.csv", "r1/train/model.bin", "r1/train/log.txt", size=2048)
    run = run_of(bucket, "r1")
    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert html.index("prepare") < html.index("train")
    assert html.index("log.txt") < html.index("model.bin")
    assert "data.csv" in html and "table" in html and "2.0\xa0KB" in html
    assert f'data-seq="{run.seq}"' in html
    assert 'id="live-status"' in html


def test_run_page_with_1000_artifacts_takes_at_most_15_queries(
    client, alice, bucket, django_assert_max_num_queries
):
    ingest(bucket, *[f"big/step-{i % 10}/file-{i:04d}.txt" for i in range(1000)])
    run = run_of(bucket, "big")
    for artifact in Artifact.objects.filter(run=run)[:300]:
        Rendition.objects.create(artifact=artifact, etag=artifact.etag, viewer="text", status="ready")
    with django_assert_max_num_queries(15):
        response = client.get(reverse("runs:detail", args=[run.pk]))
    assert response.status_code == 200
    rows, template = response.content.decode().split('<template id="artifact-row-template">')
    assert rows.count('class="artifact"') == 1000
    assert template.count('class="artifact"') == 1  # the row run_detail.js clones for live artifacts


def test_artifact_page_preview_and_download(client, alice, bucket, minio, unique_name):
    name = unique_name("dl")
    minio.make_bucket(name)
    try:
        from runs.services.access import bucket_grant_create
        from tests.factories import BucketFactory as BF

        real = BF(name=name)
        bucket_grant_create(group=alice.groups.get(), bucket=real)
        body = b"col\n" + b"1\n" * 100_000
        minio.put_object(name, "r1/s/data.csv", io.BytesIO(body), len(body), content_type="text/csv")
        ingest(real, "r1/s/data.csv", size=len(body))
        run = run_of(real, "r1")
        art = run.artifacts.get()
        page = client.get(reverse("runs:artifact", args=[run.pk, art.pk])).content.decode()
        assert "r1/s/data.csv" in page and "Download" in page
        preview = client.get(reverse("runs:artifact_preview", args=[run.pk, art.pk])).content.decode()
        assert reverse("runs:artifact_download", args=[run.pk, art.pk]) in preview
        response = client.get(reverse("runs:artifact_download", args=[run.pk, art.pk]))
        assert response.status_code == 200 and response.streaming
        assert b"".join(response.streaming_content) == body
        assert response["Content-Disposition"] == 'attachment; filename="data.csv"'
        minio.remove_object(name, "r1/s/data.csv")
        gone = client.get(reverse("runs:artifact_download", args=[run.pk, art.pk]))
        assert gone.status_code == 410 and b"no longer in its bucket" in gone.content
        Artifact.objects.filter(pk=art.pk).update(deleted=True)
        assert client.get(reverse("runs:artifact_download", args=[run.pk, art.pk])).status_code == 410
    finally:
        for obj in minio.list_objects(name, recursive=True):
            minio.remove_object(name, obj.object_name)
        minio.remove_bucket(name)


def test_artifact_of_another_run_is_404(client, alice, bucket):
    ingest(bucket, "r1/s/a.txt", "r2/s/b.txt")
    r1, r2 = run_of(bucket, "r1"), run_of(bucket, "r2")
    other = r2.artifacts.get()
    assert client.get(reverse("runs:artifact", args=[r1.pk, other.pk])).status_code == 404
    assert client.get(reverse("runs:artifact_preview", args=[r1.pk, other.pk])).status_code == 404


# --- state API ------------------------------------------------------------------------


def test_state_api_returns_everything_after_a_gap_and_nothing_when_current(client, alice, bucket):
    ingest(bucket, "r1/s/a.txt", "r1/t/b.txt")
    ingest(bucket, "r1/s/a.txt", seconds=50)  # a newer version: seq 2
    run = run_of(bucket, "r1")
    url = reverse("runs:api_run_state", args=[run.pk])
    state = client.get(url, {"since": 1}).json()
    assert state["seq"] == run.seq == 2 and state["changed"] is True
    assert [(s["name"], [a["name"] for a in s["artifacts"]]) for s in state["steps"]] == [
        ("s", ["a.txt"]),
        ("t", ["b.txt"]),
    ]
    assert state["steps"][0]["artifacts"][0]["renditions"] == []
    assert client.get(url, {"since": 2}).json() == {**state, "changed": False, "steps": None}
    assert client.get(url).json()["changed"] is True


@pytest.mark.parametrize(
    "since, reason",
    [
        ("abc", "Enter a whole number"),
        ("-1", "greater than or equal to 0"),
        ("1.5", "Enter a whole number"),
        ("9" * 30, "less than or equal to"),
    ],
)
def test_state_api_rejects_a_bad_since(client, alice, bucket, since, reason):
    ingest(bucket, "r1/s/a.txt")
    response = client.get(reverse("runs:api_run_state", args=[run_of(bucket, "r1").pk]), {"since": since})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("since:") and reason in response.json()["error"]
