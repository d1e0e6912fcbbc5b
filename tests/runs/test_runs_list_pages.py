"""Keyset pages of the runs list (docs/portal.md#pages): every sort walks forward and back
through the same pages, ties keep one order, runs without the metric come last, bad page
links are a clear 400, and a page costs the same few queries however many runs it shows."""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import Artifact, Rendition, Run
from runs.services.run_metrics import run_metrics_refresh
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, user_with_grant

pytestmark = pytest.mark.django_db


def ids_on(page_html: str) -> list[int]:
    rows = page_html.split('<template id="run-row-template">')[0]  # not the row run_list.js clones
    return [int(i) for i in re.findall(r'<tr id="run-(\d+)"', rows)]


def link(page_html: str, rel: str) -> str | None:
    found = re.search(r'<a href="(\?[^"]*)" rel="' + rel + '"', page_html)
    return "/" + html.unescape(found.group(1)) if found else None


def walk(client, url: str, rel: str) -> list[list[int]]:
    """The pages met following ``rel`` links from ``url``; the last url too."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:500])
        body = response.content.decode()
        pages.append(ids_on(body))
        last, url = url, link(body, rel)
        assert len(pages) < 50
    return pages, last


def accuracy(key, value):
    a = Artifact.objects.get(key=key)
    Rendition.objects.create(
        artifact=a,
        etag=a.etag,
        viewer="metrics",
        status="ready",
        payload={"metrics": [{"name": "accuracy", "value": value, "display": f"{value:g}"}]},
    )
    run_metrics_refresh(run_ids=[a.run_id])


@pytest.fixture
def many_runs(django_user_model):
    """Eleven runs in two buckets: ties on time, on name, on artifact count and on the metric."""
    first, second = BucketFactory(name="bucket-a"), BucketFactory(name="bucket-b")
    ingest(first, "alpha/s/a.txt", "alpha/s/b.txt", "beta/s/a.txt", seconds=0)
    ingest(second, "alpha/s/a.txt", seconds=0)  # same name and time as bucket-a's alpha
    ingest(first, "gamma/s/a.txt", "delta/s/a.txt", seconds=100)  # same time
    ingest(first, "eps/s/m.json", "eps/s/b.txt", seconds=200)
    ingest(second, "zeta/s/m.json", seconds=300)
    ingest(second, "eta/s/m.json", "eta/s/b.txt", "eta/s/c.txt", seconds=400)
    ingest(first, "theta/s/m.json", seconds=500)
    ingest(first, "iota/s/m.json", seconds=600)
    accuracy("eps/s/m.json", 0.9)
    accuracy("zeta/s/m.json", 0.7)
    accuracy("eta/s/m.json", 0.9)  # ties with eps
    accuracy("theta/s/m.json", 0.1)
    assert Run.objects.count() == 10
    return django_user_model.objects.create_superuser(username="root", password="pw-root-123")


def expected(sort: str) -> list[int]:
    runs = list(Run.objects.all())
    with_metric = {m.run_id: m.value for r in runs for m in r.metrics.all()}
    keys = {
        "recent": lambda r: (-r.last_event_at.timestamp(), -r.pk),
        "oldest": lambda r: (r.last_event_at.timestamp(), r.pk),
        "name": lambda r: (r.name, r.pk),
        "artifacts": lambda r: (-r.artifact_count, -r.last_event_at.timestamp(), -r.pk),
    }
    if sort in keys:
        return [r.pk for r in sorted(runs, key=keys[sort])]
    descending = sort == "metric=accuracy&order=desc"
    has = sorted(
        (r for r in runs if r.pk in with_metric),
        key=lambda r: (-with_metric[r.pk], -r.pk) if descending else (with_metric[r.pk], r.pk),
    )
    return [r.pk for r in has] + sorted((r.pk for r in runs if r.pk not in with_metric), reverse=True)


@pytest.mark.parametrize(
    "sort",
    ["recent", "oldest", "name", "artifacts", "metric=accuracy&order=desc", "metric=accuracy&order=asc"],
)
@pytest.mark.parametrize("size", [1, 3, 4, 10, 50])
def test_every_sort_pages_forward_and_back_through_the_same_pages(client, many_runs, settings, sort, size):
    settings.RUNS_PAGE_SIZE = size
    client.force_login(many_runs)
    query = sort if sort.startswith("metric") else f"sort={sort}"
    forward, last = walk(client, f"/?{query}", "next")
    assert [pk for page in forward for pk in page] == expected(sort)
    assert all(len(page) == size for page in forward[:-1]) and 1 <= len(forward[-1]) <= size
    backward, _ = walk(client, last, "prev")
    assert backward[::-1] == forward


def test_first_page_counts_and_pager_links(client, many_runs, settings):
    settings.RUNS_PAGE_SIZE = 4
    client.force_login(many_runs)
    first = client.get("/").content.decode()
    assert "10 runs" in first and link(first, "next") and not link(first, "prev")
    second = client.get(link(first, "next")).content.decode()
    assert link(second, "first") == "/?" and link(second, "prev")


def test_the_count_is_capped(client, many_runs, settings, monkeypatch):
    from runs.selectors import runs_list

    monkeypatch.setattr(runs_list, "COUNT_CAP", 5)
    client.force_login(many_runs)
    assert "More than 5 runs" in client.get("/").content.decode()
    assert "2 runs" in client.get("/?q=alpha").content.decode()  # under the cap: exact


def test_a_page_link_keeps_the_filters(client, many_runs, settings):
    settings.RUNS_PAGE_SIZE = 2
    client.force_login(many_runs)
    pages, _ = walk(client, "/?bucket=bucket-b", "next")
    assert [pk for page in pages for pk in page] == list(
        Run.objects.filter(bucket__name="bucket-b")
        .order_by("-last_event_at", "-id")
        .values_list("pk", flat=True)
    )


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda token, nxt: "garbage", "This page link is damaged"),
        (
            lambda token, nxt: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
            "This page link is damaged",
        ),
        (lambda token, nxt: token + "&before=" + token, "either after or before, not both"),
        (lambda token, nxt: token + "&sort=oldest", "belongs to another sort order"),
        (lambda token, nxt: token + "&metric=accuracy", "belongs to another sort order"),
    ],
)
def test_a_bad_page_link_is_a_clear_400(client, many_runs, settings, tamper, message):
    settings.RUNS_PAGE_SIZE = 2
    client.force_login(many_runs)
    nxt = link(client.get("/").content.decode(), "next")
    token = re.search(r"after=([^&]+)", nxt).group(1)
    response = client.get("/?after=" + tamper(token, nxt))
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_old_numbered_page_link_is_explained(client, many_runs):
    client.force_login(many_runs)
    assert client.get("/?page=1").status_code == 200
    response = client.get("/?page=3")
    assert response.status_code == 400 and "Pages have no numbers any more" in response.content.decode()


def test_a_page_costs_the_same_few_queries_however_many_runs_it_shows(client, django_user_model, settings):
    bucket = BucketFactory(name="bucket-q")
    for i in range(30):
        ingest(bucket, f"run-{i}/s/m.json", f"run-{i}/s/progress.json", seconds=i)
        if i % 3:
            accuracy(f"run-{i}/s/m.json", i / 100)
    client.force_login(user_with_grant(django_user_model, "quinn", bucket))

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    pages = {"/": [], "/?status=active&q=run": [], "/?metric=accuracy": []}
    for size in (2, 30):
        settings.RUNS_PAGE_SIZE = size
        for url, counts in pages.items():
            counts.append(queries(url))
    settings.RUNS_PAGE_SIZE = 2
    pages["/"].append(queries(link(client.get("/").content.decode(), "next")))
    assert len(set(pages["/"])) == 1 and set(pages["/"]) == set(pages["/?status=active&q=run"])
    # A metric sort that reaches the runs without the metric asks for them too.
    assert pages["/?metric=accuracy"][0] <= pages["/?metric=accuracy"][1] <= pages["/"][0] + 1
    assert max(pages["/?metric=accuracy"]) <= 12
