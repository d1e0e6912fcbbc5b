"""Fan-out: N authenticated WebSocket clients of a real daphne watch one run; time from
``put_object`` to the last client receiving the push. Issue 3 target: N = 1,000, p99 <= 1 s.
Run with ``make bench B=fanout``.

The clients are asyncio sockets (``websockets``) in this one process, connected
with bounded concurrency. Each round puts one object into the watched run and
waits until every client has its push (or BENCH_ROUND_TIMEOUT_S). Both Redis
channel layers are measured (BENCH_LAYERS="pubsub core"), each against a
fresh daphne and consumer. Besides put -> last client (which includes MinIO's
own delay before the event reaches Kafka), it reports Kafka -> last client and
first -> last client, the fan-out proper.
"""

import asyncio
import json
import os
import threading
import time

from _common import median, percentile, report, setup_django
from _live import kafka_watch, live_services, session_cookie

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
LAYERS = os.environ.get("BENCH_LAYERS", "pubsub core").split()
CONNECT_CONCURRENCY = 50
# Handshakes one client tries before the benchmark gives up (a saturated daphne drops
# some; 3,000 clients on one process need more than 1,000 do).
CONNECT_ATTEMPTS = int(os.environ.get("BENCH_CONNECT_ATTEMPTS", "8"))
# MinIO's queue replay alone can take 3 s; a push not there 10 s after the put is lost.
ROUND_TIMEOUT_S = float(os.environ.get("BENCH_ROUND_TIMEOUT_S", "10"))
MAX_SECONDS = 900  # hard bound per layer (connects + rounds x timeout stays below it)


async def run_clients(
    services,
    run_id: int,
    cookie: str,
    kafka_seen: dict,
    *,
    clients: int = CLIENTS,
    rounds: int = ROUNDS,
    connect_concurrency: int = CONNECT_CONCURRENCY,
) -> dict:
    """``clients`` sockets on ``services.ws_url`` (one daphne, or nginx in front of several:
    bench/scale.py), ``rounds`` puts; the timings of each round."""
    import websockets

    arrivals: dict[str, list[float]] = {}
    headers = {"Cookie": cookie, "Origin": services.url}
    url = f"{services.ws_url}/ws/runs/{run_id}/"
    gate = asyncio.Semaphore(connect_concurrency)
    sockets = []

    async def reader(ws):
        try:
            async for raw in ws:
                now = time.monotonic()
                for art in json.loads(raw).get("artifacts", ()):
                    arrivals.setdefault(art["key"], []).append(now)
        except websockets.ConnectionClosed:
            pass

    retries = []

    async def connect():
        async with gate:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    ws = await websockets.connect(
                        url, additional_headers=headers, open_timeout=60, ping_interval=None, max_queue=None
                    )
                    break
                except (websockets.InvalidStatus, websockets.InvalidMessage, OSError) as exc:
                    # A refused handshake under connect load, or one daphne dropped (it
                    # closes a socket its application has not accepted within
                    # --websocket_connect_timeout, 5 s): retry as live.js does.
                    retries.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                raise ConnectionError(f"a client was refused {CONNECT_ATTEMPTS} times: {retries[-1]}")
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            sockets.append(ws)

    readers = []
    try:
        started = time.monotonic()
        connects = [asyncio.create_task(connect()) for _ in range(clients)]
        try:
            await asyncio.gather(*connects)
        except BaseException:
            for task in connects:  # the others stop connecting; the finally closes what is open
                task.cancel()
            await asyncio.gather(*connects, return_exceptions=True)
            raise
        connect_s = time.monotonic() - started
        readers += [asyncio.create_task(reader(ws)) for ws in sockets]
        await asyncio.sleep(1.0)

        put_to_last, kafka_to_last, kafka_to_first, first_to_last, complete, missing = [], [], [], [], 0, 0
        for i in range(rounds):
            key = f"watched/step/round-{i:04d}.txt"
            await asyncio.to_thread(services.put, key)
            put_at = time.monotonic()
            deadline = put_at + ROUND_TIMEOUT_S
            while len(arrivals.get(key, ())) < clients and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            got = arrivals.get(key, [])
            if len(got) == clients:
                complete += 1
                put_to_last.append((max(got) - put_at) * 1000)
                first_to_last.append((max(got) - min(got)) * 1000)
                if key in kafka_seen:
                    kafka_to_last.append((max(got) - kafka_seen[key]) * 1000)
                    kafka_to_first.append((min(got) - kafka_seen[key]) * 1000)
            else:
                missing += clients - len(got)
                if got and key in kafka_seen:  # how fast it was for those it did reach
                    kafka_to_first.append((min(got) - kafka_seen[key]) * 1000)
                print(
                    f"round {i}: only {len(got)} of {clients} clients got the push within {ROUND_TIMEOUT_S} s"
                )
            await asyncio.sleep(0.3)
        for ws in sockets:
            await ws.close()
    finally:
        # Also when a client could not connect: sockets left open would keep daphne
        # writing pushes to a client that no longer reads them, and load what follows.
        for task in readers:
            task.cancel()
        for ws in sockets:
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.abort()
    if retries:
        print(f"{len(retries)} handshakes refused and retried (first: {retries[0]})")
    return {
        "connect_s": round(connect_s, 1),
        "handshakes_retried": len(retries),
        "rounds_complete": complete,
        "pushes_missing": missing,
        "put_to_last": put_to_last,
        "kafka_to_last": kafka_to_last,
        "kafka_to_first": kafka_to_first,
        "first_to_last": first_to_last,
    }


def one_layer(db_url: str, layer: str) -> dict:
    with live_services(db_url, layer=layer) as services:
        services.put("watched/step/warm-up.txt")
        run = services.wait_run("watched")
        cookie = session_cookie()
        kafka_seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(
            target=kafka_watch, args=(services.bucket.name, "watched/", kafka_seen, stop), daemon=True
        )
        watcher.start()
        try:
            figures = asyncio.run(
                asyncio.wait_for(run_clients(services, run.pk, cookie, kafka_seen), MAX_SECONDS)
            )
        finally:
            stop.set()
            watcher.join(10)

    def stats(values):
        return {
            "p50_ms": round(median(values), 1) if values else None,
            "p99_ms": round(percentile(values, 99), 1) if values else None,
        }

    out = {
        "layer": layer,
        "connect_s": figures["connect_s"],
        "rounds_complete": figures["rounds_complete"],
        "pushes_missing": figures["pushes_missing"],
        "put_to_last": stats(figures["put_to_last"]),
        "kafka_to_last": stats(figures["kafka_to_last"]),
        "kafka_to_first": stats(figures["kafka_to_first"]),
        "first_to_last": stats(figures["first_to_last"]),
    }
    print(json.dumps(out))
    return out


def main() -> None:
    import resource
    import signal

    # A stopped benchmark still stops its daphne and consumer and removes its bucket.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, CLIENTS * 2 + 256)), hard))
    db_url = setup_django("bench")
    results = [one_layer(db_url, layer) for layer in LAYERS]
    chosen = results[0]
    report(
        {
            "clients": CLIENTS,
            "rounds": ROUNDS,
            "layer": chosen["layer"],
            "p50_ms": chosen["put_to_last"]["p50_ms"],
            "p99_ms": chosen["put_to_last"]["p99_ms"],
            "kafka_to_last_p50_ms": chosen["kafka_to_last"]["p50_ms"],
            "kafka_to_last_p99_ms": chosen["kafka_to_last"]["p99_ms"],
            "kafka_to_first_p50_ms": chosen["kafka_to_first"]["p50_ms"],
            "first_to_last_p50_ms": chosen["first_to_last"]["p50_ms"],
            "first_to_last_p99_ms": chosen["first_to_last"]["p99_ms"],
            "rounds_complete": chosen["rounds_complete"],
            "others": {
                r["layer"]: {
                    "rounds_complete": r["rounds_complete"],
                    "pushes_missing": r["pushes_missing"],
                    "kafka_to_last_p99_ms": r["kafka_to_last"]["p99_ms"],
                    "first_to_last_p99_ms": r["first_to_last"]["p99_ms"],
                    "put_to_last_p99_ms": r["put_to_last"]["p99_ms"],
                }
                for r in results[1:]
            },
        }
    )


if __name__ == "__main__":
    main()
