"""Recipes end to end: uploads to the real MinIO, the consumer, the sandbox worker process.

The starter recipes render on matching artifacts and their output shows on the
artifact page; hostile recipes end with a reason on the recipe page while the
same worker goes on serving; permissions over pages and API.
"""

import base64
import json
import random
import time

import pytest
from django.contrib.auth.models import Group, Permission

from runs.models import Artifact, Recipe, RecipeRun, Rendition
from runs.services.access import bucket_grant_create
from runs.services.recipes import recipe_save, recipes_install_starters
from tests.helpers import put, wait_for


def artifact_of(bucket, key):
    return wait_for(
        lambda: Artifact.objects.filter(bucket=bucket, key=key).exclude(etag="").first(),
        timeout=30,
        what=f"{key} to be ingested",
    )


def predictions_csv(rows: int = 2000) -> bytes:
    rng = random.Random(1)
    lines = ["label,score"]
    for _ in range(rows):
        s = rng.random()
        lines.append(f"{int(rng.random() < s)},{s:.4f}")
    return ("\n".join(lines) + "\n").encode()


CONFUSION = b"target,predicted,count\ncat,cat,50\ncat,dog,5\ndog,dog,40\ndog,cat,10\n"


def author(django_user_model, username="author", bucket=None):
    user = django_user_model.objects.create_user(username=username, password="pw")
    user.user_permissions.add(Permission.objects.get(codename="author_recipe"))
    group, _ = Group.objects.get_or_create(name=f"g-{username}")
    user.groups.add(group)
    if bucket is not None:
        bucket_grant_create(group=group, bucket=bucket)
    return django_user_model.objects.get(pk=user.pk), group


def final_rendition(artifact, recipe):
    return wait_for(
        lambda: Rendition.objects.filter(
            artifact=artifact, viewer="recipe", payload__recipe_id=recipe.pk, status__in=["ready", "failed"]
        ).first(),
        timeout=60,
        what=f"recipe {recipe.name} on {artifact.name}",
    )


def test_starter_recipes_render_on_matching_artifacts_and_show_on_the_artifact_page(
    minio, live_bucket, running_consumer, sandbox_worker_process, client, django_user_model
):
    user, _group = author(django_user_model, bucket=live_bucket)
    starters = {r.name: r for r in recipes_install_starters(owner=user)}
    put(minio, live_bucket.name, "r1/eval/predictions.csv", predictions_csv())
    put(minio, live_bucket.name, "r1/eval/confusion.csv", CONFUSION)
    predictions = artifact_of(live_bucket, "r1/eval/predictions.csv")
    confusion = artifact_of(live_bucket, "r1/eval/confusion.csv")
    client.force_login(user)
    cases = [
        (starters["Calibration curve"], predictions, 'class="recipe-png"'),
        (starters["Per-class precision/recall"], confusion, "<th>precision</th>"),
        (starters["Histogram of a numeric column"], predictions, 'class="webapp"'),
    ]
    for recipe, artifact, _marker in cases:
        page = client.get(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/")
        assert f'data-recipe="{recipe.pk}"' in page.content.decode()  # one click to run
        response = client.post(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/recipes/{recipe.pk}/run")
        assert response.status_code == 302
    for recipe, artifact, marker in cases:
        rendition = final_rendition(artifact, recipe)
        run = RecipeRun.objects.filter(recipe=recipe, artifact=artifact).latest("id")
        assert rendition.status == "ready", (run.reason, run.message, run.traceback, run.stderr)
        html = client.get(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/").content.decode()
        assert marker in html, recipe.name
    png = Rendition.objects.get(artifact=predictions, payload__recipe_id=starters["Calibration curve"].pk)
    image = client.get(f"/runs/{predictions.run_id}/artifacts/{predictions.pk}/renditions/{png.pk}/thumbnail")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    table = Rendition.objects.get(artifact=confusion, viewer="recipe")
    assert table.payload["rows"][0][:2] == ["cat", "55"]
    # Cached per (recipe version, etag): asking again queues nothing.
    before = RecipeRun.objects.count()
    client.post(f"/runs/{confusion.run_id}/artifacts/{confusion.pk}/recipes/{table.payload['recipe_id']}/run")
    assert RecipeRun.objects.count() == before


HOSTILE = {
    "env secret": (
        "import os\ndef render(path, meta):\n    return os.environ['DJANGO_SECRET_KEY']\n",
        "exception",
    ),
    "proc environ": (
        "def render(path, meta):\n    e = open('/proc/1/environ').read()\n"
        "    return [x for x in e.split('\\0') if x.startswith('DJANGO_SECRET_KEY=')][0]\n",
        "exception",
    ),
    "project file": (
        "def render(path, meta):\n    return open('/work/main/vizsite/settings/base.py').read()\n",
        "exception",
    ),
    "postgres": (
        "import socket\ndef render(path, meta):\n    socket.create_connection(('127.0.0.1', 54329), 2)\n",
        "exception",
    ),
    "outside": (
        "import socket\ndef render(path, meta):\n    return str(socket.getaddrinfo('example.com', 80))\n",
        "exception",
    ),
    "write": ("def render(path, meta):\n    open('/usr/evil', 'w')\n", "exception"),
    "fork bomb": ("import os\ndef render(path, meta):\n    while True:\n        os.fork()\n", "processes"),
    "8 GiB": ("def render(path, meta):\n    return bytearray(8 * 2**30)\n", "memory"),
    "forever": ("def render(path, meta):\n    while True:\n        pass\n", "cpu"),
    "print 1 GB": ("def render(path, meta):\n    while True:\n        print('x' * 4096)\n", "output_flood"),
    "child left": (
        "import os\ndef render(path, meta):\n    if os.fork() == 0:\n"
        "        os.execv('/usr/bin/sleep', ['sleep', '777.5'])\n    return 'x'\n",
        "left_processes",
    ),
}


def test_hostile_recipes_end_with_a_reason_on_the_recipe_page_and_the_worker_carries_on(
    minio, live_bucket, running_consumer, sandbox_worker_process, client, django_user_model
):
    user, _group = author(django_user_model, bucket=live_bucket)
    put(minio, live_bucket.name, "r2/step/data.csv", b"a,b\n1,2\n")
    artifact = artifact_of(live_bucket, "r2/step/data.csv")
    client.force_login(user)
    for name, (source, reason) in HOSTILE.items():
        recipe = recipe_save(user=user, name=name, source=source, kinds=["table"])
        client.post(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/recipes/{recipe.pk}/run")
        rendition = final_rendition(artifact, recipe)
        run = RecipeRun.objects.filter(recipe=recipe).latest("id")
        assert rendition.status == "failed", name
        assert run.reason == reason, (name, run.reason, run.message, run.traceback[-300:])
        page = client.get(f"/recipes/{recipe.pk}/").content.decode()
        assert f'<span class="run-reason">{reason}</span>' in page
        stored = json.dumps([run.stdout, run.stderr, run.traceback, run.message, rendition.error])
        assert sandbox_worker_process.canary not in stored
    good = recipe_save(
        user=user, name="good", source="def render(path, meta):\n    return '<b>ok</b>'\n", kinds=["table"]
    )
    client.post(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/recipes/{good.pk}/run")
    assert final_rendition(artifact, good).status == "ready"
    assert sandbox_worker_process.proc.poll() is None
    # Every run went through the sandbox worker, which has no database (its DATABASE_URL
    # points at a closed port) and never tried one.
    log = sandbox_worker_process.log()
    assert log.count(b"Task runs.recipe_sandbox[") >= len(HOSTILE) + 1
    assert b"OperationalError" not in log and b"could not connect" not in log


@pytest.mark.django_db
def test_without_the_permission_nobody_creates_or_edits_recipes(client, django_user_model, settings):
    settings.RECIPES_ENABLED = True
    owner, _ = author(django_user_model, "owner")
    recipe = recipe_save(user=owner, name="r", source="def render(p, m):\n    return 'x'\n")
    plain = django_user_model.objects.create_user(username="plain", password="pw")
    client.force_login(plain)
    assert client.get("/recipes/new").status_code == 403
    assert client.post("/recipes/new", {"name": "x", "source": "def render(p, m): pass"}).status_code == 403
    assert (
        client.post(f"/recipes/{recipe.pk}/", {"name": "x", "source": "def render(p, m): pass"}).status_code
        == 404
    )
    api = client.post(
        "/api/recipes", json.dumps({"name": "x", "source": "def render(p, m): pass"}), "application/json"
    )
    assert api.status_code == 403
    api = client.post(
        f"/api/recipes/{recipe.pk}", json.dumps({"name": "y", "source": "x=1"}), "application/json"
    )
    assert api.status_code == 404
    recipe.groups.add(Group.objects.create(name="readers"))
    plain.groups.add(Group.objects.get(name="readers"))
    api = client.post(
        f"/api/recipes/{recipe.pk}", json.dumps({"name": "y", "source": "x=1"}), "application/json"
    )
    assert api.status_code == 403  # shared with them: may run, not edit
    assert client.post(f"/recipes/{recipe.pk}/", {"name": "x", "source": "x=1"}).status_code == 403
    # Another author may not edit someone else's recipe either.
    other, _ = author(django_user_model, "other")
    client.force_login(other)
    api = client.post(
        f"/api/recipes/{recipe.pk}", json.dumps({"name": "y", "source": "x=1"}), "application/json"
    )
    assert api.status_code == 404
    recipe.refresh_from_db()
    assert recipe.name == "r" and recipe.version == 1
    # With the permission: create over the API and the page.
    api = client.post(
        "/api/recipes",
        json.dumps({"name": "mine", "source": "def render(p, m):\n    return 'x'\n"}),
        "application/json",
    )
    assert api.status_code == 201
    assert (
        client.post(
            "/recipes/new", {"name": "page", "source": "def render(p, m):\n    return 'x'\n", "enabled": "on"}
        ).status_code
        == 302
    )
    assert set(Recipe.objects.values_list("name", flat=True)) == {"r", "mine", "page"}


@pytest.mark.django_db
def test_a_recipe_not_shared_or_an_artifact_not_visible_cannot_be_run(client, django_user_model, settings):
    from runs.models import Bucket
    from tests.runs.portal_helpers import ingest

    settings.RECIPES_ENABLED = True
    bucket = Bucket.objects.create(name="recipes-access")
    ingest(bucket, "run-a/step/data.csv")
    artifact = Artifact.objects.get(bucket=bucket, key="run-a/step/data.csv")
    owner, _ = author(django_user_model, "owner", bucket=bucket)
    recipe = recipe_save(user=owner, name="r", source="def render(p, m):\n    return 'x'\n", kinds=["table"])
    viewer = django_user_model.objects.create_user(username="viewer", password="pw")
    group = Group.objects.create(name="viewers")
    viewer.groups.add(group)
    bucket_grant_create(group=group, bucket=bucket)
    client.force_login(viewer)
    url = f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/recipes/{recipe.pk}/run"
    assert client.post(url).status_code == 404  # not shared with them
    assert (
        f'data-recipe="{recipe.pk}"'
        not in client.get(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/").content.decode()
    )
    api = client.post(
        f"/api/recipes/{recipe.pk}/run",
        json.dumps({"run": artifact.run_id, "artifact": artifact.pk}),
        "application/json",
    )
    assert api.status_code == 404
    # Shared, but the artifact is not visible to this user: 404 as well.
    recipe.groups.add(group)
    stranger = django_user_model.objects.create_user(username="stranger", password="pw")
    stranger.groups.add(group)
    client.force_login(stranger)
    bucket_grant_create(group=Group.objects.create(name="x"), bucket=bucket)
    from runs.models import BucketGrant

    BucketGrant.objects.filter(group=group).delete()
    assert client.post(url).status_code == 404
    assert client.get(f"/runs/{artifact.run_id}/artifacts/{artifact.pk}/").status_code == 404
    assert not RecipeRun.objects.exists()


@pytest.mark.django_db
def test_recipes_off_means_every_recipe_url_is_gone(client, django_user_model, settings):
    settings.RECIPES_ENABLED = False
    user, _ = author(django_user_model, "a")
    client.force_login(user)
    assert client.get("/recipes/").status_code == 404
    assert client.get("/recipes/new").status_code == 404
    assert client.post("/api/recipes", "{}", "application/json").status_code == 404


def recipe_tasks(messages) -> list[str]:
    # The render queue also gets the ingest's render_batch of the uploaded file.
    return sorted(task for task, _body in messages if task.startswith("runs.recipe"))


@pytest.fixture
def own_queues(settings, unique_name):
    """Queues of this test alone, that no worker serves: what the services send stays there,
    read back from Redis as a worker would get it."""
    import redis

    settings.RENDER_QUEUE = unique_name("render-test")
    settings.SANDBOX_QUEUE = unique_name("sandbox-test")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def messages(queue):
        out = []
        for raw in broker.lrange(queue, 0, -1):
            message = json.loads(raw)
            body = message["body"]
            if message["properties"].get("body_encoding") == "base64":
                body = base64.b64decode(body)
            out.append((message["headers"]["task"], json.loads(body)))
        return out

    yield messages
    for queue in (settings.RENDER_QUEUE, settings.SANDBOX_QUEUE):
        broker.delete(queue, f"_kombu.binding.{queue}")


def test_a_run_whose_result_never_comes_back_fails_as_lost_and_a_late_result_is_dropped(
    minio, live_bucket, running_consumer, django_user_model, settings, own_queues
):
    """The trusted steps, with no worker: the dispatch reads the input and sends the job
    (checked in Redis); no result comes (the sandbox worker was lost); the deadline fails
    the run; a late result changes nothing."""
    from runs.services.recipes import (
        recipe_run_deadline,
        recipe_run_dispatch,
        recipe_run_request,
        recipe_run_store,
    )

    settings.RECIPES_ENABLED = True
    user, _group = author(django_user_model, bucket=live_bucket)
    put(minio, live_bucket.name, "r3/step/data.csv", b"a,b\n1,2\n")
    artifact = artifact_of(live_bucket, "r3/step/data.csv")
    recipe = recipe_save(user=user, name="lost", source="def render(path, meta):\n    return 'x'\n")
    run = recipe_run_request(recipe=recipe, artifact=artifact, user=user)
    assert recipe_tasks(own_queues(settings.RENDER_QUEUE)) == ["runs.recipe_run"]
    assert recipe_run_dispatch(run_id=run.pk) == "dispatched"
    assert recipe_run_dispatch(run_id=run.pk) == "skipped"  # a redelivered message
    ((task, (args, _kwargs, _embed)),) = own_queues(settings.SANDBOX_QUEUE)
    (job,) = args
    assert task == "runs.recipe_sandbox" and job["run_id"] == run.pk and job["source"] == recipe.source
    assert base64.b64decode(job["data_b64"]) == b"a,b\n1,2\n" and job["filename"] == "data.csv"
    assert job["reply_queue"] == settings.RENDER_QUEUE and job["meta"]["etag"] == artifact.etag
    assert recipe_tasks(own_queues(settings.RENDER_QUEUE)) == ["runs.recipe_deadline", "runs.recipe_run"]
    rendition = Rendition.objects.get(artifact=artifact, viewer="recipe", payload__recipe_id=recipe.pk)
    assert rendition.status == "rendering"
    assert recipe_run_deadline(run_id=run.pk, deadline_at=time.time() + 3600) == "waiting"
    assert recipe_run_deadline(run_id=run.pk, deadline_at=0) == "failed"
    run.refresh_from_db()
    rendition.refresh_from_db()
    assert run.reason == "lost" and "sandbox worker" in run.message
    assert rendition.status == "failed" and "No result came back" in rendition.error
    late = {"reason": "ok", "output": {"type": "html", "html": "<p>late</p>"}, "message": ""}
    assert recipe_run_store(run_id=run.pk, result=late) == "skipped"
    rendition.refresh_from_db()
    assert rendition.status == "failed" and rendition.preview_key == ""


def test_an_input_over_the_limit_fails_before_anything_is_sent(
    minio, live_bucket, running_consumer, django_user_model, settings, own_queues
):
    from runs.services.recipes import recipe_run_dispatch, recipe_run_request

    settings.RECIPES_ENABLED = True
    settings.SANDBOX_INPUT_MAX_BYTES = 4
    user, _group = author(django_user_model, bucket=live_bucket)
    put(minio, live_bucket.name, "r4/step/data.csv", b"a,b\n1,2\n")
    artifact = artifact_of(live_bucket, "r4/step/data.csv")
    recipe = recipe_save(user=user, name="big", source="def render(path, meta):\n    return 'x'\n")
    run = recipe_run_request(recipe=recipe, artifact=artifact, user=user)
    assert recipe_run_dispatch(run_id=run.pk) == "failed"
    assert own_queues(settings.SANDBOX_QUEUE) == []  # no job for the sandbox
    run.refresh_from_db()
    assert run.reason == "input" and "4" in run.message
    rendition = Rendition.objects.get(artifact=artifact, viewer="recipe", payload__recipe_id=recipe.pk)
    assert rendition.status == "failed" and rendition.error == run.message
