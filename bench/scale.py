"""Scale-out on this machine (issue 14 item 4): 2 `web` behind nginx, 2 `consume_events` in
one consumer group, 2 render workers, on the production settings; the fan-out, latency
and ingest benchmarks against them, beside the same benchmarks against one process of
each, measured in the same run. Run with ``make bench B=scale`` (docs/deploy.md#scaling-out).

Two topologies, one after the other, each started from the virtualenv and stopped
(even on failure) before the next:

- ``single``: one daphne (clients connect to it directly, as bench/fanout.py does),
  one ``consume_events``, one render worker;
- ``scaled``: BENCH_SCALE_WEBS daphne processes behind a private nginx running
  deploy/nginx/pipelens.conf (deploy/nginx/loopback.py), BENCH_SCALE_CONSUMERS
  ``consume_events`` in one new consumer group, BENCH_SCALE_WORKERS Celery render
  workers on the queue ``render-scale``.

Each topology has its own consumer group, its own MinIO bucket (publishing through
the bench notification target, so nothing reaches `make run`'s topic) and its own
4-partition ingest topic registered before its consumers start, so every consumer
of the group holds partitions. Phases, in this order: fan-out for each of
BENCH_SCALE_CLIENTS (1,000 and 3,000 WebSocket clients, put -> last client),
latency (put -> one client, 50 background events/s), then ingest (BENCH_SCALE_EVENTS
MinIO-shaped messages produced onto the ingest topic while the group runs, timed
until the group has committed them all; last, so the renders it queues do not
load the other phases).

The processes get vizsite.settings.production with only its required variables
(a random secret key, ALLOWED_HOSTS 127.0.0.1, the services' URLs and keys) and
TRUSTED_PROXY_COUNT=1 behind nginx (0 when clients connect to daphne directly).
SECURE_SSL_REDIRECT stays on: the loopback nginx is plain HTTP, so pages would
redirect to https://, but the demo only uses /readyz (answered before the
redirect, vizsite/probes.py) and WebSockets (not redirected).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import fanout
import ingest
import latency
from _common import ROOT, claim_events_topic, median, percentile, report, setup_django
from _live import LOG_DIR, free_port, kafka_watch, session_cookie, skip_to_end

sys.path.insert(0, str(ROOT / "deploy" / "nginx"))
from loopback import NGINX, LoopbackNginx  # noqa: E402 - deploy/nginx is not a package

WEBS = int(os.environ.get("BENCH_SCALE_WEBS", "2"))
CONSUMERS = int(os.environ.get("BENCH_SCALE_CONSUMERS", "2"))
WORKERS = int(os.environ.get("BENCH_SCALE_WORKERS", "2"))
CLIENT_COUNTS = [int(n) for n in os.environ.get("BENCH_SCALE_CLIENTS", "1000 3000").split()]
FANOUT_ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "20"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_SCALE_SAMPLES", "200"))
# Handshakes in flight at once: each waits for the session lookup on daphne's one
# database thread, and daphne drops one not accepted within 5 s (fewer than fanout.py's 50).
CONNECT_CONCURRENCY = int(os.environ.get("BENCH_SCALE_CONNECT_CONCURRENCY", "20"))
INGEST_EVENTS = int(os.environ.get("BENCH_SCALE_EVENTS", "30000"))
TOPOLOGIES = os.environ.get("BENCH_SCALE_TOPOLOGIES", "single scaled").split()
# >= the group's size, or a consumer idles; bench/ingest.py's all_committed reads 4.
INGEST_PARTITIONS = 4
START_TIMEOUT_S = 90
SETTLE_MAX_S = 300  # a daphne still refusing sockets this long after a fan-out fails the demo
FANOUT_MAX_S = 900  # per client count: connects + rounds x timeout stay below it
INGEST_MAX_S = 600


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


class Topology:
    """web, consume_events and render worker processes on one database (and nginx when
    ``behind_nginx``); the ``services`` interface bench/fanout.py and bench/latency.py use."""

    def __init__(
        self, db_url: str, *, name: str, webs: int, consumers: int, workers: int, behind_nginx: bool
    ):
        self.db_url = db_url
        self.name = name
        self.webs, self.consumers, self.workers = webs, consumers, workers
        self.behind_nginx = behind_nginx
        self.tag = f"scale-{name}-{uuid.uuid4().hex[:8]}"
        self.group = self.tag
        self.queue = "render-scale" if name == "scaled" else f"render-scale-{name}"
        self.ingest_topic = f"{self.tag}-ingest"
        self.ingest_bucket = None
        self.web_ports = [free_port() for _ in range(webs)]
        self.nginx = None
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.bucket = None
        self.url = self.ws_url = ""

    # --- the processes -----------------------------------------------------------------

    def env(self) -> dict:
        """vizsite.settings.production with its required variables only (see the module doc)."""
        env = {k: v for k, v in os.environ.items() if k != "PIPELENS_DEVELOPMENT"}
        from django.conf import settings

        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "vizsite.settings.production",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": self.db_url,
                # The bench notification target and topic (vizsite/settings/bench.py).
                "MINIO_KAFKA_TOPIC": settings.MINIO_KAFKA_TOPIC,
                "MINIO_NOTIFY_ARN": settings.MINIO_NOTIFY_ARN,
                "WEBAPP_ORIGIN": "http://localhost:9",  # no web-app process in the demo
                "TRUSTED_PROXY_COUNT": "1" if self.behind_nginx else "0",
                "RENDER_QUEUE": self.queue,
                "CHANNEL_LAYER_PREFIX": f"pipelens-{self.tag}",
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
                "RECONCILE_ENABLED": "false",  # the benchmark's buckets need no listing
            }
        )
        return env

    def spawn(self, role: str, argv: list[str]) -> subprocess.Popen:
        log_path = LOG_DIR / f"bench-{self.tag}-{role}-{len(self.procs)}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((role, proc, log_path))
        return proc

    def start(self) -> Topology:
        from confluent_kafka.admin import AdminClient
        from django.conf import settings

        from runs.models import Bucket, KafkaTopic
        from runs.services.buckets import bucket_register
        from streaming.ingest.session_topics import topic_create

        events_topic = claim_events_topic()
        self.bucket = bucket_register(name=f"{self.tag}"[:40], store="default")
        # The ingest topic and its bucket exist before the consumers start: they subscribe
        # to it at once (no rebalance mid-measurement) and start at its (empty) end.
        admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
        topic_create(admin, topic=self.ingest_topic, partitions=INGEST_PARTITIONS)
        self.ingest_bucket = Bucket.objects.create(
            name=f"{self.tag}-in"[:60],
            topic=KafkaTopic.objects.create(name=self.ingest_topic, partitions=INGEST_PARTITIONS),
        )
        skip_to_end(self.group, events_topic)
        skip_to_end(self.group, self.ingest_topic)

        bindir = Path(sys.executable).parent
        for port in self.web_ports:
            self.spawn(
                "web",
                [str(bindir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "vizsite.asgi:application"],
            )
        for _ in range(self.consumers):
            self.spawn("consume", [sys.executable, "manage.py", "consume_events", "--group", self.group])
        for i in range(self.workers):
            self.spawn(
                "worker",
                [
                    *(str(bindir / "celery"), "-A", "vizsite", "worker", "-Q", self.queue),
                    *(
                        "-n",
                        f"{self.tag}-{i}@%h",
                        "-c",
                        "1",
                        "--without-gossip",
                        "--without-mingle",
                        "-l",
                        "INFO",
                    ),
                ],
            )
        if self.behind_nginx:
            self.nginx = LoopbackNginx(
                prefix=ROOT / ".local" / "run" / f"nginx-{self.tag}",
                web_ports=self.web_ports,
                static_root=str(ROOT / "staticfiles"),
                # Each proxied socket holds two connections; 2 workers share the clients.
                connections=max(CLIENT_COUNTS) * 2 + 512,
            ).start()
            self.url = self.nginx.url
        else:
            self.url = f"http://127.0.0.1:{self.web_ports[0]}"
        self.ws_url = self.url.replace("http://", "ws://")
        self.wait_ready()
        return self

    def check_alive(self) -> None:
        for role, proc, log_path in self.procs:
            if proc.poll() is not None:
                raise SystemExit(f"{role} exited with {proc.returncode}; see {log_path}")

    def wait_ready(self) -> None:
        """Every daphne and nginx answer /readyz 200, every worker logged "ready", and the
        group has its members, each holding ingest partitions."""
        deadline = time.monotonic() + START_TIMEOUT_S
        urls = [f"http://127.0.0.1:{p}/readyz" for p in self.web_ports] + [self.url + "/readyz"]
        while True:
            self.check_alive()
            pending = [u for u in urls if not _answers_200(u)]
            pending += [
                str(log_path)
                for role, _, log_path in self.procs
                if role == "worker" and " ready." not in log_path.read_text()
            ]
            if not pending and self.group_assigned():
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{self.name}: not ready after {START_TIMEOUT_S} s: {pending or 'the group'}"
                )
            time.sleep(0.5)

    def group_assigned(self) -> bool:
        from confluent_kafka.admin import AdminClient
        from django.conf import settings

        admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
        try:
            desc = admin.describe_consumer_groups([self.group])[self.group].result(10)
        except Exception:  # the group is still being created
            return False
        held = [
            {tp.partition for tp in m.assignment.topic_partitions if tp.topic == self.ingest_topic}
            for m in desc.members
        ]
        return len(held) == self.consumers and all(held) and len(set().union(*held)) == INGEST_PARTITIONS

    def shares(self) -> dict:
        """How the work spread: WebSocket handshakes per web process and events stored per
        consumer, read from their logs (daphne's access log, ``batch_stored count=``)."""
        out: dict[str, list[int]] = {"web_ws_connects": [], "consumer_events": []}
        for role, _, log_path in self.procs:
            text = log_path.read_text(errors="replace")
            if role == "web":
                out["web_ws_connects"].append(text.count('"WSCONNECT '))
            elif role == "consume":
                out["consumer_events"].append(
                    sum(int(n) for n in re.findall(r"event=batch_stored count=(\d+)", text))
                )
        return out

    def stop(self) -> None:
        """Stop everything started, remove the bucket, the ingest topic and the queue's leftovers."""
        if self.nginx is not None:
            self.nginx.stop()
            error_log = self.nginx.prefix / "error.log"
            if error_log.exists():
                shutil.copy(error_log, LOG_DIR / f"bench-{self.tag}-nginx-error.log")
            shutil.rmtree(self.nginx.prefix, ignore_errors=True)
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _cleanup(self)

    # --- what bench/fanout.py and bench/latency.py call ----------------------------------

    def put(self, key: str, data: bytes = b"x") -> None:
        import io

        from runs.storage import minio_client

        minio_client("default").put_object(
            self.bucket.name, key, io.BytesIO(data), len(data), content_type="text/plain"
        )

    def wait_run(self, run_key: str, timeout: float = 30.0):
        from runs.models import Run

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run = Run.objects.filter(bucket=self.bucket, run_key=run_key).first()
            if run:
                return run
            time.sleep(0.1)
        raise SystemExit(f"run {run_key} never arrived; see the consumers' logs in {LOG_DIR}")


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _cleanup(topo: Topology) -> None:
    """The topology's MinIO bucket, its ingest topic (and rows) and its render queue go."""
    from confluent_kafka.admin import AdminClient
    from django.conf import settings

    from runs.models import KafkaTopic
    from runs.storage import minio_client
    from streaming.ingest.session_topics import topic_delete

    if topo.bucket is not None:
        client = minio_client("default")
        client.delete_bucket_notification(topo.bucket.name)
        for obj in client.list_objects(topo.bucket.name, recursive=True):
            client.remove_object(topo.bucket.name, obj.object_name)
        client.remove_bucket(topo.bucket.name)
    if topo.ingest_bucket is not None:
        KafkaTopic.objects.filter(name=topo.ingest_topic).update(enabled=False)
        topic_delete(
            AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}), topic=topo.ingest_topic
        )
    # Renders still queued (ingest's artifacts) would wait for a worker that never comes.
    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete(topo.queue)


# --- phases -----------------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    return {
        "p50_ms": round(median(values), 1) if values else None,
        "p99_ms": round(percentile(values, 99), 1) if values else None,
    }


def wait_settled(topo: Topology, run_id: int, cookie: str) -> float:
    """Seconds until every daphne (and nginx) completes a WebSocket handshake again.

    After thousands of sockets close at once each daphne spends a long while on their
    disconnects (it logs "took too long to shut down and was killed" for many) and
    drops or refuses new handshakes meanwhile (502 through nginx): the next phase
    waits for that to end, and the time is a figure of its own."""
    from websockets.sync.client import connect

    bases = [f"ws://127.0.0.1:{p}" for p in topo.web_ports] + ([topo.ws_url] if topo.behind_nginx else [])
    headers = {"Cookie": cookie, "Origin": topo.url}
    started = time.monotonic()
    while bases:
        try:
            with connect(f"{bases[0]}/ws/runs/{run_id}/", additional_headers=headers, open_timeout=5) as ws:
                if '"hello"' in ws.recv(timeout=5):
                    bases.pop(0)
                    continue
        except Exception:  # noqa: BLE001 - refused, dropped or slow: not settled yet
            pass
        topo.check_alive()
        if time.monotonic() - started > SETTLE_MAX_S:
            raise TimeoutError(f"{bases[0]} still refuses WebSockets {SETTLE_MAX_S} s after the fan-out")
        time.sleep(1.0)
    return round(time.monotonic() - started, 1)


def fanout_phase(topo: Topology, run_id: int, cookie: str, clients: int) -> dict:
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(
        target=kafka_watch, args=(topo.bucket.name, "watched/", seen, stop), daemon=True
    )
    watcher.start()
    load = [loadavg()]
    started = time.monotonic()
    try:
        figures = asyncio.run(
            asyncio.wait_for(
                fanout.run_clients(
                    topo,
                    run_id,
                    cookie,
                    seen,
                    clients=clients,
                    rounds=FANOUT_ROUNDS,
                    connect_concurrency=CONNECT_CONCURRENCY,
                ),
                FANOUT_MAX_S,
            )
        )
    except (ConnectionError, TimeoutError) as exc:
        # Clients that could not all connect (a saturated daphne drops handshakes): a
        # result of its own, reported as such; the other phases and topologies still run.
        topo.check_alive()
        return {
            "clients": clients,
            "failed": str(exc) or type(exc).__name__,
            "after_s": round(time.monotonic() - started),
            "settle_s": wait_settled(topo, run_id, cookie),
            "load": [*load, loadavg()],
        }
    finally:
        stop.set()
        watcher.join(10)
    load.append(loadavg())
    topo.check_alive()
    return {
        "clients": clients,
        "rounds_complete": figures["rounds_complete"],
        "pushes_missing": figures["pushes_missing"],
        "connect_s": figures["connect_s"],
        "handshakes_retried": figures["handshakes_retried"],
        "put_to_last": stats(figures["put_to_last"]),
        "kafka_to_last": stats(figures["kafka_to_last"]),
        "first_to_last": stats(figures["first_to_last"]),
        "settle_s": wait_settled(topo, run_id, cookie),
        "load": load,
    }


def latency_phase(topo: Topology, run_id: int, cookie: str) -> dict:
    stop = threading.Event()
    counts: dict[str, int] = {}
    bg = threading.Thread(target=lambda: counts.setdefault("bg", latency.background(topo, stop)), daemon=True)
    load = [loadavg()]
    bg.start()
    try:
        time.sleep(1.0)
        put_at, got_at = asyncio.run(
            asyncio.wait_for(
                latency.measure(topo, run_id, cookie, samples=LATENCY_SAMPLES), latency.MAX_SECONDS
            )
        )
    finally:
        stop.set()
        bg.join(30)
    load.append(loadavg())
    topo.check_alive()
    total = [(got_at[k] - put_at[k]) * 1000 for k in put_at if k in got_at]
    return {"samples": len(total), "lost": len(put_at) - len(total), **stats(total), "load": load}


def ingest_phase(topo: Topology) -> dict:
    """INGEST_EVENTS messages onto the group's ingest topic while it runs; timed from the
    first message produced to the group's offsets committed at the end (= all stored)."""
    from runs.models import Artifact

    messages, live = ingest.workload(INGEST_EVENTS, bucket=topo.ingest_bucket.name)
    load = [loadavg()]
    started = time.monotonic()
    ingest.produce(topo.ingest_topic, messages, create=False)
    produced_s = time.monotonic() - started
    deadline = started + INGEST_MAX_S
    while not ingest.all_committed(topo.ingest_topic, group=topo.group):
        topo.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"{topo.name}: ingest not done after {INGEST_MAX_S} s")
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    load.append(loadavg())
    stored = Artifact.objects.filter(bucket=topo.ingest_bucket, deleted=False).count()
    if stored != len(live):
        raise SystemExit(f"{topo.name}: expected {len(live)} live artifacts, found {stored}")
    return {
        "events": len(messages),
        "consumers": topo.consumers,
        "events_per_s": round(len(messages) / elapsed),
        "produce_s": round(produced_s, 2),
        "load": load,
    }


def measure(db_url: str, name: str) -> dict:
    scaled = name == "scaled"
    topo = Topology(
        db_url,
        name=name,
        webs=WEBS if scaled else 1,
        consumers=CONSUMERS if scaled else 1,
        workers=WORKERS if scaled else 1,
        behind_nginx=scaled,
    )
    print(
        f"== {name}: {topo.webs} web, {topo.consumers} consume, {topo.workers} worker, nginx: {scaled}",
        flush=True,
    )
    try:
        topo.start()
        topo.put("watched/step/warm-up.txt")
        run = topo.wait_run("watched")
        cookie = session_cookie()
        out = {"name": name, "webs": topo.webs, "consumers": topo.consumers, "workers": topo.workers}
        phases = [(f"fanout_{n}", lambda n=n: fanout_phase(topo, run.pk, cookie, n)) for n in CLIENT_COUNTS]
        phases += [
            ("latency", lambda: latency_phase(topo, run.pk, cookie)),
            ("ingest", lambda: ingest_phase(topo)),
        ]
        for key, phase in phases:
            load = loadavg()
            try:
                out[key] = phase()
            except Exception as exc:  # noqa: BLE001 - a failed phase is a result; the others still run
                topo.check_alive()
                out[key] = {"failed": f"{type(exc).__name__}: {exc}", "load": [load, loadavg()]}
            print(f"   {key}: {out[key]}", flush=True)
        out["shares"] = topo.shares()
        print(f"   shares: {out['shares']}", flush=True)
        return out
    finally:
        topo.stop()


def ratio(a, b) -> float | None:
    return round(a / b, 2) if a and b else None


def main() -> None:
    # A stopped demo still stops its processes (finally blocks) and removes its bucket and topics.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    signal.signal(signal.SIGHUP, lambda *_: (_ for _ in ()).throw(SystemExit(129)))
    if CONSUMERS > INGEST_PARTITIONS:
        raise SystemExit(
            f"BENCH_SCALE_CONSUMERS={CONSUMERS}: the ingest topic has {INGEST_PARTITIONS} partitions"
        )
    if "scaled" in TOPOLOGIES and not os.access(NGINX, os.X_OK):
        raise SystemExit(f"{NGINX} is missing: `make scale-demo` installs it (deploy/nginx/install.sh)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(CLIENT_COUNTS) * 2 + 1024
    if hard < need:
        raise SystemExit(f"ulimit -Hn is {hard}; {max(CLIENT_COUNTS)} clients need {need} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # nginx inherits it
    # One random key for this process and the ones it starts: the session this process
    # writes for the clients is signed with it (get_session_auth_hash), and production
    # settings refuse the development key.
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    db_url = setup_django("bench_scale")
    results = {name: measure(db_url, name) for name in TOPOLOGIES}

    print("\n| figure | single process | scaled | scaled / single |")
    print("|---|---|---|---|")
    single, scaled = results.get("single", {}), results.get("scaled", {})
    figures = {}
    for clients in CLIENT_COUNTS:
        key = f"fanout_{clients}"
        for part in ("put_to_last", "first_to_last"):
            for q in ("p50_ms", "p99_ms"):
                a = single.get(key, {}).get(part, {}).get(q)
                b = scaled.get(key, {}).get(part, {}).get(q)
                figures[f"{key}_{part}_{q}"] = {"single": a, "scaled": b}
                print(f"| fan-out {clients} clients, {part} {q} | {a} | {b} | {ratio(b, a)} |")
        for label, result in (("single", single), ("scaled", scaled)):
            if "failed" in result.get(key, {}):
                figures[f"{key}_failed_{label}"] = result[key]["failed"]
                print(f"| fan-out {clients} clients, {label} | failed: {result[key]['failed']} | | |")
        a, b = single.get(key, {}).get("settle_s"), scaled.get(key, {}).get("settle_s")
        figures[f"{key}_settle_s"] = {"single": a, "scaled": b}
        print(f"| fan-out {clients} clients, s until every daphne takes sockets again | {a} | {b} | |")
        a = single.get(key, {}).get("rounds_complete")
        b = scaled.get(key, {}).get("rounds_complete")
        figures[f"{key}_rounds_complete"] = {"single": a, "scaled": b}
        print(f"| fan-out {clients} clients, rounds complete of {FANOUT_ROUNDS} | {a} | {b} | |")
    for q in ("p50_ms", "p99_ms"):
        a, b = single.get("latency", {}).get(q), scaled.get("latency", {}).get(q)
        figures[f"latency_{q}"] = {"single": a, "scaled": b}
        print(f"| latency {q} | {a} | {b} | {ratio(b, a)} |")
    a, b = single.get("ingest", {}).get("events_per_s"), scaled.get("ingest", {}).get("events_per_s")
    figures["ingest_events_per_s"] = {"single": a, "scaled": b}
    print(f"| ingest events/s ({INGEST_EVENTS:,} events) | {a} | {b} | {ratio(b, a)} |")
    loads = [
        x
        for r in results.values()
        for phase in r.values()
        if isinstance(phase, dict)
        for x in phase.get("load", ())
    ]
    report(
        {
            "webs": WEBS,
            "consumers": CONSUMERS,
            "workers": WORKERS,
            "fanout_rounds": FANOUT_ROUNDS,
            "latency_samples": LATENCY_SAMPLES,
            "ingest_events": INGEST_EVENTS,
            "load_min": min(loads) if loads else None,
            "load_max": max(loads) if loads else None,
            "scaled_shares": scaled.get("shares"),
            **figures,
        }
    )


if __name__ == "__main__":
    main()
