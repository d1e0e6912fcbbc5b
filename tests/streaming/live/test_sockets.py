"""WebSocket consumers through the real ASGI stack (origin check, session auth, routing)
and the real Redis channel layer: who may connect, what they receive, bad frames."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from runs.services.changes import runs_touch
from streaming.live.broadcast import broadcast_runs
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant
from vizsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(client, user, origin=b"http://127.0.0.1:8000"):
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin)]
    if user is not None:
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def _connect(path, headers):
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


def connect_result(path, headers):
    async def go():
        comm, connected, code = await _connect(path, headers)
        hello = await comm.receive_json_from(timeout=5) if connected else None
        await comm.disconnect()
        return connected, code, hello

    return async_to_sync(go)()


@pytest.fixture
def world(django_user_model):
    a, b = BucketFactory(name="bucket-a"), BucketFactory(name="bucket-b")
    ingest(a, "ra/s/x.txt")
    ingest(b, "rb/s/y.txt")
    alice = user_with_grant(django_user_model, "alice", a)
    return a, b, alice, run_of(a, "ra"), run_of(b, "rb")


def test_a_user_connects_to_a_run_they_may_see_and_gets_its_seq(client, world):
    _a, _b, alice, ra, _rb = world
    connected, _, hello = connect_result(f"/ws/runs/{ra.pk}/", session_headers(client, alice))
    assert connected and hello == {"type": "hello", "seq": ra.seq}


def test_anonymous_other_bucket_unknown_run_and_foreign_origin_are_refused(client, world):
    _a, _b, alice, ra, rb = world
    assert connect_result(f"/ws/runs/{ra.pk}/", session_headers(client, None))[:2] == (False, 4401)
    assert connect_result("/ws/runs/", session_headers(client, None))[:2] == (False, 4401)
    # Another bucket's run and a run that does not exist are refused alike.
    assert connect_result(f"/ws/runs/{rb.pk}/", session_headers(client, alice))[:2] == (False, 4404)
    assert connect_result("/ws/runs/999999999/", session_headers(client, alice))[:2] == (False, 4404)
    evil = session_headers(client, alice, origin=b"http://evil.example")
    assert connect_result(f"/ws/runs/{ra.pk}/", evil)[0] is False


def test_pushes_reach_the_run_socket_and_runs_list_only_where_allowed(client, world):
    _a, _b, alice, ra, rb = world
    headers = session_headers(client, alice)

    async def go():
        run_sock, ok1, _ = await _connect(f"/ws/runs/{ra.pk}/", headers)
        list_sock, ok2, _ = await _connect("/ws/runs/", headers)
        assert ok1 and ok2
        assert (await run_sock.receive_json_from(5))["type"] == "hello"
        assert await list_sock.receive_json_from(5) == {"type": "hello", "seq": None}
        from asgiref.sync import sync_to_async

        def change():
            seqs = runs_touch(run_ids=[ra.pk, rb.pk])
            broadcast_runs(run_ids=[ra.pk, rb.pk], wait=True)
            return seqs

        seqs = await sync_to_async(change)()
        pushed = await run_sock.receive_json_from(5)
        assert pushed["type"] == "run.changed" and pushed["run_id"] == ra.pk and pushed["seq"] == seqs[ra.pk]
        listed = await list_sock.receive_json_from(5)
        assert listed["type"] == "runs.changed" and listed["run"]["id"] == ra.pk
        # Bucket B's run never reaches alice, on either socket.
        assert await run_sock.receive_nothing(0.5) and await list_sock.receive_nothing(0.2)
        await run_sock.disconnect()
        await list_sock.disconnect()

    async_to_sync(go)()


@pytest.mark.parametrize(
    "frame, error",
    [
        ("not json", "frame is not valid JSON"),
        ("[1, 2]", 'frame must be a JSON object with a "type"'),
        ('{"type": "subscribe", "run": 5}', "unknown message type 'subscribe'"),
        ("x" * 5000, "frame too large"),
    ],
)
def test_bad_frames_get_an_error_and_the_socket_stays_usable(client, world, frame, error):
    _a, _b, alice, ra, _rb = world
    headers = session_headers(client, alice)

    async def go():
        sock, ok, _ = await _connect(f"/ws/runs/{ra.pk}/", headers)
        assert ok
        await sock.receive_json_from(5)
        await sock.send_to(text_data=frame)
        reply = await sock.receive_json_from(5)
        assert reply["type"] == "error" and error in reply["error"]
        await sock.send_to(bytes_data=b"\x00\x01")
        assert "binary frames are not accepted" in (await sock.receive_json_from(5))["error"]
        await sock.send_to(text_data=json.dumps({"type": "ping"}))
        assert await sock.receive_json_from(5) == {"type": "pong"}
        await sock.disconnect()

    async_to_sync(go)()


def test_a_prefix_grant_limits_sockets_to_that_prefix(client, django_user_model):
    bucket = BucketFactory(name="bucket-p")
    ingest(bucket, "team-x/s/a.txt", "team-y/s/b.txt")
    rx, ry = run_of(bucket, "team-x"), run_of(bucket, "team-y")
    xavier = user_with_grant(django_user_model, "xavier", bucket, key_prefix="team-x")
    headers = session_headers(client, xavier)
    assert connect_result(f"/ws/runs/{rx.pk}/", headers)[0] is True
    assert connect_result(f"/ws/runs/{ry.pk}/", headers)[:2] == (False, 4404)

    async def go():
        from asgiref.sync import sync_to_async

        list_sock, ok, _ = await _connect("/ws/runs/", headers)
        assert ok
        await list_sock.receive_json_from(5)
        await sync_to_async(lambda: broadcast_runs(run_ids=[ry.pk, rx.pk], wait=True))()
        assert (await list_sock.receive_json_from(5))["run"]["run_key"] == "team-x"
        assert await list_sock.receive_nothing(0.5)
        await list_sock.disconnect()

    async_to_sync(go)()


# --- sockets lose access (issue 8, finding 5) --------------------------------------


async def _closed_with(sock, timeout: float = 10.0) -> int | None:
    """The close code the server sent, skipping pushes; None if it sent none in time (the
    communicator then stops the application: use ``receive_nothing`` to check a socket stays)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            out = await sock.receive_output(timeout=max(0.01, deadline - loop.time()))
        except TimeoutError:
            return None
        if out["type"] == "websocket.close":
            return out.get("code")
    return None


def _opened(path, headers):
    async def go():
        sock, ok, code = await _connect(path, headers)
        assert ok, code
        await sock.receive_json_from(5)  # hello
        return sock

    return go()


def test_revoking_a_grant_closes_the_run_socket_and_narrows_the_list(client, world):
    from asgiref.sync import sync_to_async

    from runs.models import BucketGrant
    from runs.services.access import bucket_grant_delete

    a, _b, alice, ra, _rb = world
    headers = session_headers(client, alice)

    async def go():
        run_sock = await _opened(f"/ws/runs/{ra.pk}/", headers)
        list_sock = await _opened("/ws/runs/", headers)
        grant = await sync_to_async(lambda: BucketGrant.objects.get(group__user=alice, bucket=a))()
        await sync_to_async(bucket_grant_delete)(grant=grant)
        assert await _closed_with(run_sock) == 4403
        # The list stays open but no longer shows bucket A's runs.
        assert await list_sock.receive_nothing(1.0)
        await sync_to_async(lambda: broadcast_runs(run_ids=[ra.pk], wait=True))()
        assert await list_sock.receive_nothing(0.5)
        await list_sock.disconnect()

    async_to_sync(go)()


def test_deactivating_the_user_closes_their_sockets(client, world):
    from asgiref.sync import sync_to_async

    _a, _b, alice, ra, _rb = world
    headers = session_headers(client, alice)

    async def go():
        run_sock = await _opened(f"/ws/runs/{ra.pk}/", headers)
        list_sock = await _opened("/ws/runs/", headers)

        def deactivate():  # as the admin's change form does
            alice.is_active = False
            alice.save()

        await sync_to_async(deactivate)()
        assert await _closed_with(run_sock) == 4401
        assert await _closed_with(list_sock) == 4401

    async_to_sync(go)()


def test_logging_out_closes_that_sessions_sockets_only(world):
    from asgiref.sync import sync_to_async
    from django.test import Client

    _a, _b, alice, ra, _rb = world
    first, second = Client(), Client()
    headers_first, headers_second = session_headers(first, alice), session_headers(second, alice)

    async def go():
        mine = await _opened(f"/ws/runs/{ra.pk}/", headers_first)
        other = await _opened(f"/ws/runs/{ra.pk}/", headers_second)
        await sync_to_async(lambda: first.post("/accounts/logout/"))()
        assert await _closed_with(mine) == 4401
        assert await other.receive_nothing(2.0)
        await other.disconnect()

    async_to_sync(go)()


def test_a_password_change_ends_the_other_sessions_and_their_sockets(world):
    """Django rotates the changing session's key and invalidates every other session:
    each socket bound to an old session closes with 4401; the page that changed the
    password holds a fresh cookie and reconnects, the others must log in again."""
    from asgiref.sync import sync_to_async
    from django.test import Client

    _a, _b, alice, ra, _rb = world
    alice.set_password("old-secret-123")
    alice.save()
    changer, elsewhere = Client(), Client()
    headers_changer, headers_elsewhere = session_headers(changer, alice), session_headers(elsewhere, alice)

    async def go():
        mine = await _opened(f"/ws/runs/{ra.pk}/", headers_changer)
        stale = await _opened(f"/ws/runs/{ra.pk}/", headers_elsewhere)
        response = await sync_to_async(
            lambda: changer.post(
                "/accounts/password_change/",
                {
                    "old_password": "old-secret-123",
                    "new_password1": "n3w-Secret-xyz",
                    "new_password2": "n3w-Secret-xyz",
                },
            )
        )()
        assert response.status_code == 302
        assert await _closed_with(stale) == 4401
        assert await _closed_with(mine) == 4401

    async_to_sync(go)()
    fresh = [
        (b"host", b"127.0.0.1:8000"),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"cookie", f"sessionid={changer.cookies['sessionid'].value}".encode()),
    ]
    assert connect_result(f"/ws/runs/{ra.pk}/", fresh)[0] is True
    assert connect_result(f"/ws/runs/{ra.pk}/", headers_elsewhere)[:2] == (False, 4401)


def test_a_lost_announcement_is_caught_by_the_periodic_check(client, world, settings):
    from asgiref.sync import sync_to_async
    from django.db import connection

    settings.SOCKET_ACCESS_RECHECK_S = 0.3
    a, _b, alice, ra, _rb = world
    headers = session_headers(client, alice)

    def revoke_behind_pipelens_back():  # no signal, no announcement
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM runs_bucketgrant WHERE bucket_id = %s", [a.pk])

    async def go():
        sock = await _opened(f"/ws/runs/{ra.pk}/", headers)
        await sync_to_async(revoke_behind_pipelens_back)()
        assert await _closed_with(sock, timeout=5) == 4403

    async_to_sync(go)()


def test_sockets_close_at_their_maximum_age_so_the_page_reconnects(client, world, settings):
    settings.SOCKET_MAX_AGE_S = 0.5
    _a, _b, alice, ra, _rb = world
    headers = session_headers(client, alice)

    async def go():
        sock = await _opened(f"/ws/runs/{ra.pk}/", headers)
        assert await _closed_with(sock, timeout=5) == 4000

    async_to_sync(go)()
