"""The compare page's socket (/ws/compare/?runs=…) through the real ASGI stack and Redis layer:
who may connect, the hello with every run's seq, pushes of every compared run, revocation."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant
from tests.streaming.live.test_sockets import _closed_with, _connect, connect_result, session_headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(django_user_model):
    a, b = BucketFactory(name="bucket-a"), BucketFactory(name="bucket-b")
    ingest(a, "r1/s/x.txt")
    ingest(a, "r2/s/x.txt", "r2/s/y.txt")
    ingest(b, "rb/s/y.txt")
    alice = user_with_grant(django_user_model, "alice", a)
    return a, alice, run_of(a, "r1"), run_of(a, "r2"), run_of(b, "rb")


def test_the_compare_socket_says_every_runs_seq(client, world):
    _a, alice, r1, r2, _rb = world
    connected, _, hello = connect_result(f"/ws/compare/?runs={r1.pk},{r2.pk}", session_headers(client, alice))
    assert connected and hello == {"type": "hello", "seqs": {str(r1.pk): r1.seq, str(r2.pk): r2.seq}}


def test_one_invisible_or_missing_run_refuses_the_whole_socket(client, world):
    _a, alice, r1, r2, rb = world
    headers = session_headers(client, alice)
    assert connect_result(f"/ws/compare/?runs={r1.pk},{rb.pk}", headers)[:2] == (False, 4404)
    assert connect_result(f"/ws/compare/?runs={r1.pk},999999999", headers)[:2] == (False, 4404)
    assert connect_result(f"/ws/compare/?runs={r1.pk}", headers)[:2] == (False, 4404)  # fewer than 2
    assert connect_result("/ws/compare/?runs=1,x", headers)[:2] == (False, 4404)
    anonymous = session_headers(client, None)
    assert connect_result(f"/ws/compare/?runs={r1.pk},{r2.pk}", anonymous)[:2] == (False, 4401)


def test_a_new_artifact_in_any_compared_run_is_pushed(client, world):
    a, alice, r1, r2, _rb = world
    headers = session_headers(client, alice)

    async def go():
        sock, ok, code = await _connect(f"/ws/compare/?runs={r1.pk},{r2.pk}", headers)
        assert ok, code
        assert (await sock.receive_json_from(5))["type"] == "hello"
        await sync_to_async(ingest)(a, "r2/eval/roc.csv", seconds=50)
        pushed = await sock.receive_json_from(10)
        assert pushed["type"] == "run.changed" and pushed["run_id"] == r2.pk
        assert [art["key"] for art in pushed["artifacts"]] == ["r2/eval/roc.csv"]
        assert pushed["seq"] > r2.seq
        await sync_to_async(ingest)(a, "r1/eval/roc.csv", seconds=60)
        pushed = await sock.receive_json_from(10)
        assert pushed["run_id"] == r1.pk
        await sock.disconnect()

    async_to_sync(go)()


def test_revoking_access_to_the_runs_closes_the_compare_socket(client, world):
    from runs.models import BucketGrant
    from runs.services.access import bucket_grant_delete

    a, alice, r1, r2, _rb = world
    headers = session_headers(client, alice)

    async def go():
        sock, ok, code = await _connect(f"/ws/compare/?runs={r1.pk},{r2.pk}", headers)
        assert ok, code
        await sock.receive_json_from(5)
        grant = await sync_to_async(lambda: BucketGrant.objects.get(group__user=alice, bucket=a))()
        await sync_to_async(bucket_grant_delete)(grant=grant)
        assert await _closed_with(sock) == 4403

    async_to_sync(go)()
