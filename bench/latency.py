"""Push latency: from ``put_object`` returning to the message reaching an authenticated
WebSocket client of a real daphne, with background events at 50/s. Issue 3 target:
p50 <= 150 ms, p99 <= 500 ms. Run with ``make bench B=latency``; with
``BENCH_STORE=seaweedfs`` the watched bucket lives on SeaweedFS and its events
come from the filer (issue 12).

One measured object every 200 ms (BENCH_SAMPLES of them, >= 200), each under the
watched run; background objects go to another run of the same bucket at
BENCH_BACKGROUND_RATE/s. A raw Kafka reader notes when each measured event
reaches the topic, so the figures split into put -> Kafka (MinIO) and
Kafka -> browser (consumer, database, broadcast, daphne).
"""

import asyncio
import json
import os
import threading
import time

from _common import median, percentile, report, setup_django
from _live import kafka_watch, live_services, session_cookie

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "250"))
INTERVAL_S = float(os.environ.get("BENCH_INTERVAL_S", "0.2"))
BACKGROUND_RATE = float(os.environ.get("BENCH_BACKGROUND_RATE", "50"))
MAX_SECONDS = 300  # hard bound for the whole measurement


def background(services, stop: threading.Event) -> int:
    sent, start = 0, time.monotonic()
    if BACKGROUND_RATE <= 0:
        return 0
    while not stop.is_set():
        due = start + sent / BACKGROUND_RATE
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        services.put(f"background/step-{sent % 5}/file-{sent}.txt")
        sent += 1
    return sent


async def open_socket(url: str, headers: dict, attempts: int = 8):
    """A WebSocket to ``url``, retried as live.js does when a busy daphne refuses or drops
    the handshake (e.g. just after a fan-out closed thousands of sockets: bench/scale.py)."""
    import websockets

    for attempt in range(attempts):
        try:
            return await websockets.connect(url, additional_headers=headers, max_size=2**22)
        except (websockets.InvalidStatus, websockets.InvalidMessage, OSError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))


async def measure(services, run_id: int, cookie: str, *, samples: int = SAMPLES):
    """``samples`` measured puts, each timed until the socket on ``services.ws_url`` has it."""

    put_at: dict[str, float] = {}
    got_at: dict[str, float] = {}
    headers = {"Cookie": cookie, "Origin": services.url}
    async with await open_socket(f"{services.ws_url}/ws/runs/{run_id}/", headers) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello

        async def reader():
            while len(got_at) < samples:
                msg = json.loads(await ws.recv())
                now = time.monotonic()
                for art in msg.get("artifacts", ()):
                    got_at.setdefault(art["key"], now)

        async def writer():
            for i in range(samples):
                key = f"watched/step/sample-{i:04d}.txt"
                await asyncio.to_thread(services.put, key)
                put_at[key] = time.monotonic()
                await asyncio.sleep(INTERVAL_S)

        read = asyncio.create_task(reader())
        await writer()
        try:
            await asyncio.wait_for(read, timeout=30)
        except TimeoutError:
            read.cancel()
    return put_at, got_at


def main() -> None:
    db_url = setup_django("bench")
    with live_services(db_url) as services:
        services.put("watched/step/warm-up.txt")
        run = services.wait_run("watched")
        cookie = session_cookie()
        stop = threading.Event()
        kafka_seen: dict[str, float] = {}
        watcher = threading.Thread(
            target=kafka_watch,
            args=(services.bucket.name, "watched/", kafka_seen, stop),
            kwargs={"topic": services.bucket.topic.name},
            daemon=True,
        )
        watcher.start()
        counts = {}
        bg = threading.Thread(
            target=lambda: counts.setdefault("background", background(services, stop)), daemon=True
        )
        bg.start()
        time.sleep(1.0)
        started = time.monotonic()
        put_at, got_at = asyncio.run(asyncio.wait_for(measure(services, run.pk, cookie), MAX_SECONDS))
        elapsed = time.monotonic() - started
        stop.set()
        bg.join(30)
        watcher.join(10)
    keys = [k for k in put_at if k in got_at]
    total = [(got_at[k] - put_at[k]) * 1000 for k in keys]
    to_kafka = [(kafka_seen[k] - put_at[k]) * 1000 for k in keys if k in kafka_seen]
    from_kafka = [(got_at[k] - kafka_seen[k]) * 1000 for k in keys if k in kafka_seen]
    if len(keys) < len(put_at):
        print(f"warning: {len(put_at) - len(keys)} of {len(put_at)} samples never reached the client")
    report(
        {
            "store": os.environ.get("BENCH_STORE", "default"),
            "samples": len(keys),
            "lost": len(put_at) - len(keys),
            "background_events_per_s": round(counts.get("background", 0) / elapsed, 1),
            "put_to_kafka_p50_ms": round(median(to_kafka), 1) if to_kafka else None,
            "kafka_to_client_p50_ms": round(median(from_kafka), 1) if from_kafka else None,
            "kafka_to_client_p99_ms": round(percentile(from_kafka, 99), 1) if from_kafka else None,
            "p50_ms": round(median(total), 1),
            "p99_ms": round(percentile(total, 99), 1),
        }
    )


if __name__ == "__main__":
    main()
