"""/metrics (vizsite/metrics.py, vizsite/probes.py): who may read it, and that the figures
of every process (daphne, the consumer, a render worker) add up in one answer."""

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as ws_connect

from runs.models import Rendition
from tests.conftest import WorkerProcess, skip_to_end, wait_db_sessions_gone
from tests.helpers import database_url, put, wait_for
from tests.test_production_settings import manage

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "a-long-random-metrics-token-for-the-test"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# --- who may read it ------------------------------------------------------------------------


def test_loopback_reads_the_metrics_by_default(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# HELP pipelens_events_consumed_total" in response.content
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


def test_other_addresses_are_refused_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"pipelens_" not in response.content


def test_the_token_opens_the_metrics_to_any_address_and_only_the_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    missing = client.get("/metrics", **outside)
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token", **outside).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}", **outside).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **outside).status_code == 200


def test_allowed_networks_follow_the_setting_and_the_trusted_proxies(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    # Behind one proxy, the address is the one the proxy saw, not the proxy's own.
    settings.TRUSTED_PROXY_COUNT = 1
    via_proxy = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert client.get("/metrics", **via_proxy).status_code == 403
    # A spoofed entry further left is not believed: the proxy saw 10.9.9.9.
    inside = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.9.9.9"}
    assert client.get("/metrics", **inside).status_code == 200
    spoofed = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "10.9.9.9, 203.0.113.9"}
    assert client.get("/metrics", **spoofed).status_code == 403
    # Straight to the pod from outside, claiming an inside address: the peer is not allowed.
    direct = {"REMOTE_ADDR": "203.0.113.50", "HTTP_X_FORWARDED_FOR": "10.9.9.9"}
    assert client.get("/metrics", **direct).status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_settings_refuse_a_bad_network_or_a_short_token():
    dev = {"PIPELENS_DEVELOPMENT": "1"}
    bad = manage(
        "check", env={**dev, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-net"}, settings_module=None
    )
    assert bad.returncode != 0 and "METRICS_ALLOWED_NETWORKS: 'not-a-net' is not a network" in bad.stderr
    short = manage("check", env={**dev, "METRICS_TOKEN": "short"}, settings_module=None)
    assert short.returncode != 0 and "METRICS_TOKEN is shorter than 16 characters" in short.stderr


# --- several processes, one answer ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(multiproc_dir: Path, app: str, **extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
        "DATABASE_URL": database_url(application_name=app),
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        **extra,
    }


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_metrics_of_the_consumer_the_worker_and_daphne_add_up_in_one_answer(
    live_bucket, minio, unique_name, tmp_path, client, django_user_model
):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    queue = unique_name("render-test")
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=settings.MINIO_KAFKA_TOPIC)
    port = free_port()
    procs: list[subprocess.Popen] = []
    worker = WorkerProcess(
        queue,
        tmp_path / "worker.log",
        _env(multiproc, "pipelens-test-metrics-worker", RENDER_QUEUE=queue, RENDER_RETRY_BACKOFF_S="0.5"),
    )
    try:
        daphne = str(Path(sys.executable).with_name("daphne"))
        procs.append(
            subprocess.Popen(
                [daphne, "-b", "127.0.0.1", "-p", str(port), "vizsite.asgi:application"],
                cwd=ROOT,
                env=_env(multiproc, "pipelens-test-metrics-daphne"),
                stdout=(tmp_path / "daphne.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "consume_events", "--group", group],
                cwd=ROOT,
                env=_env(
                    multiproc,
                    "pipelens-test-metrics-consumer",
                    RENDER_QUEUE=queue,
                    KAFKA_TOPIC_REFRESH_S="0.2",
                ),
                stdout=(tmp_path / "consumer.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        )
        worker.start()
        base = f"http://127.0.0.1:{port}"

        def daphne_up():
            try:
                return _get(base + "/healthz")
            except OSError:
                return None

        wait_for(daphne_up, timeout=30, what="daphne")
        wait_for(lambda: b"event=subscribed" in (tmp_path / "consumer.log").read_bytes(), what="the consumer")

        # A browser on the runs list (daphne's process) while the objects arrive.
        admin = django_user_model.objects.create_superuser("metrics-admin", password="pw-metrics-admin")
        client.force_login(admin)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        with ws_connect(
            f"ws://127.0.0.1:{port}/ws/runs/", additional_headers={"Cookie": cookie, "Origin": base}
        ) as socket_:
            assert '"hello"' in socket_.recv(timeout=10)
            put(minio, live_bucket.name, "run/step/notes.txt", b"some text\n", "text/plain")
            put(minio, live_bucket.name, "run/step/broken.png", b"not a png at all", "image/png")

            def rendered():
                rows = Rendition.objects.filter(artifact__bucket=live_bucket)
                statuses = set(rows.values_list("status", flat=True))
                return rows.count() == 2 and statuses <= {Rendition.Status.READY, Rendition.Status.FAILED}

            wait_for(rendered, timeout=60, what="both artifacts rendered by the worker")
            assert '"runs.changed"' in socket_.recv(timeout=10)

            # The consumer counts a batch once its offsets are committed and the worker a
            # render once it is stored, both just after what the test saw: wait for them.
            created = (
                "pipelens_events_consumed_total",
                (("action", "created"), ("bucket", live_bucket.name)),
            )
            renders = [
                ("pipelens_render_duration_seconds_count", (("viewer", v),)) for v in ("text", "image")
            ]

            def counted():
                figures = samples(_get(base + "/metrics"))
                done = figures.get(created) == 2 and all(k in figures for k in renders)
                return figures if done else None

            open_figures = wait_for(counted, what="the consumer's and the worker's metrics")
        closed = wait_for(
            lambda: (
                (
                    (m := samples(_get(base + "/metrics"))).get(
                        ("pipelens_websocket_connections", (("socket", "runs_list"),))
                    )
                    == 0
                )
                and m
            ),
            what="the closed socket to leave the gauge",
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        worker.stop()
        for app in ("daphne", "consumer"):
            wait_db_sessions_gone(f"pipelens-test-metrics-{app}")
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue, f"_kombu.binding.{queue}")

    bucket = live_bucket.name
    # The consumer's process: events by action and bucket, batches, lag per partition.
    assert open_figures[("pipelens_events_consumed_total", (("action", "created"), ("bucket", bucket)))] == 2
    assert open_figures[("pipelens_ingest_batch_duration_seconds_count", ())] >= 1
    lag = [k for k in open_figures if k[0] == "pipelens_consumer_lag_messages"]
    assert any(dict(labels)["topic"] == settings.MINIO_KAFKA_TOPIC for _, labels in lag)
    # The worker's pool process: render durations per viewer, the failed image.
    assert open_figures[("pipelens_render_duration_seconds_count", (("viewer", "text"),))] >= 1
    assert open_figures[("pipelens_render_duration_seconds_count", (("viewer", "image"),))] >= 1
    assert open_figures[("pipelens_render_failures_total", (("viewer", "image"),))] >= 1
    assert ("pipelens_render_failures_total", (("viewer", "text"),)) not in open_figures
    # Daphne's process: the open socket and what was pushed to it; pushes published by the others.
    assert open_figures[("pipelens_websocket_connections", (("socket", "runs_list"),))] == 1
    assert open_figures[("pipelens_websocket_pushes_total", (("socket", "runs_list"),))] >= 1
    assert open_figures[("pipelens_broadcast_messages_total", (("outcome", "sent"),))] >= 1
    assert closed[("pipelens_events_consumed_total", (("action", "created"), ("bucket", bucket)))] == 2
    # Daphne took its live gauge with it at exit; the counters' files stay, to be summed.
    assert list(multiproc.glob("gauge_livesum_*.db")) == []
    assert list(multiproc.glob("counter_*.db"))


def test_bucket_labels_stop_growing_past_the_cap(monkeypatch):
    from vizsite import metrics

    monkeypatch.setattr(metrics, "MAX_BUCKET_LABELS", 3)
    monkeypatch.setattr(metrics, "_bucket_labels", set())
    names = [metrics.bucket_label(f"b{i}") for i in range(5)]
    assert names == ["b0", "b1", "b2", "_other", "_other"]
    assert metrics.bucket_label("b1") == "b1"
