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


@pytest.mark.parametrize("frame, error", [
    ("not json", "frame is not valid JSON"),
    ("[1, 2]", 'frame must be a JSON object with a "type"'),
    ('{"type": "subscribe", "run": 5}', "unknown message type 'subscribe'"),
    ("x" * 5000, "frame too large"),
])
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
