"""The consumer's announcements on a thread of their own (streaming/ingest/announcer.py)
and the hand-over in runs.services.changes (``changes_run_with``)."""

import threading

import pytest

from runs.services import changes
from runs.services.changes import Changes, changes_on_commit, changes_run_with
from streaming.ingest.announcer import Announcer


def ingested(run_ids, artifact_ids=()):
    return Changes(run_ids=frozenset(run_ids), artifact_ids=tuple(artifact_ids), ingested=True)


def test_change_sets_are_announced_in_order_on_their_thread_and_close_waits():
    announcer = Announcer()
    seen = []
    release = threading.Event()

    def blocked(change):
        release.wait(10)
        seen.append((change, threading.current_thread().name))

    def listener(change):
        seen.append((change, threading.current_thread().name))

    announcer([blocked], ingested({1}, [10]))
    announcer([listener], ingested({2}, [20]))  # other listeners: never merged into the first
    release.set()
    announcer.close()
    assert [change for change, _ in seen] == [ingested({1}, [10]), ingested({2}, [20])]
    assert all(name.startswith("ingest-announce") for _, name in seen)


def test_change_sets_that_wait_are_merged_into_one_announcement():
    announcer = Announcer()
    seen = []
    started, release = threading.Event(), threading.Event()

    def listener(change):
        started.set()
        release.wait(10)
        seen.append(change)

    listeners = [listener]
    announcer(listeners, ingested({1}, [11]))
    started.wait(10)  # the first is being announced; the next ones wait
    announcer(listeners, ingested({2}, [22, 12]))
    announcer(listeners, ingested({1, 3}, [12]))
    announcer(listeners, Changes(run_ids=frozenset({4}), artifact_ids=(), ingested=False))  # other kind
    release.set()
    announcer.close()
    assert seen == [
        ingested({1}, [11]),
        ingested({1, 2, 3}, [12, 22]),
        Changes(run_ids=frozenset({4}), artifact_ids=(), ingested=False),
    ]
    assert announcer.merged == 1


def test_a_failing_listener_does_not_stop_the_next_announcement():
    announcer = Announcer()
    seen = []

    def broken(change):
        raise RuntimeError("boom")

    announcer([broken, seen.append], ingested({1}))
    announcer.close()
    assert seen == [ingested({1})]


def test_changes_of_different_kinds_do_not_merge():
    with pytest.raises(ValueError):
        ingested({1}).merged(Changes(run_ids=frozenset({2}), artifact_ids=(), ingested=False))


@pytest.mark.django_db
def test_committed_changes_go_to_the_runner_and_reach_the_listeners_when_it_announces(
    django_capture_on_commit_callbacks,
):
    got: list[Changes] = []
    handed: list = []
    subscribed = list(changes._listeners)
    changes._listeners[:] = [got.append]  # only this test's listener: no real renders or pushes
    try:
        with changes_run_with(lambda listeners, change: handed.append((listeners, change))):
            with django_capture_on_commit_callbacks(execute=True):
                changes_on_commit(run_ids=[7], artifact_ids=[3, 2], ingested=True)
            assert got == []  # committed and handed over, not yet announced
            [(listeners, change)] = handed
            changes.changes_announce(listeners, change)
        assert got == [ingested({7}, [2, 3])]
        # Outside the block, the committing thread announces again.
        with django_capture_on_commit_callbacks(execute=True):
            changes_on_commit(run_ids=[8])
        assert len(got) == 2 and len(handed) == 1
    finally:
        changes._listeners[:] = subscribed
