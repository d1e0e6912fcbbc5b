"""The consumer's announcements on a thread of their own (streaming/ingest/announcer.py)
and the hand-over in runs.services.changes (``changes_run_with``)."""

import threading

import pytest

from runs.services import changes
from runs.services.changes import Changes, changes_on_commit, changes_run_with
from streaming.ingest.announcer import Announcer


def test_announcements_run_in_order_on_their_thread_and_close_waits_for_them():
    announcer = Announcer()
    seen = []
    release = threading.Event()

    def first():
        release.wait(10)
        seen.append(("first", threading.current_thread().name))

    announcer(first)
    # The second hand-over waits for the first one: at most one batch behind.
    second = threading.Thread(
        target=announcer, args=(lambda: seen.append(("second", threading.current_thread().name)),)
    )
    second.start()
    release.set()
    second.join(10)
    announcer.close()
    assert [what for what, _ in seen] == ["first", "second"]
    assert all(name.startswith("ingest-announce") for _, name in seen)


def test_a_failing_announcement_does_not_stop_the_next():
    announcer = Announcer()
    seen = []

    def broken():
        raise RuntimeError("boom")

    announcer(broken)
    announcer(lambda: seen.append("next"))
    announcer.close()
    assert seen == ["next"]


@pytest.mark.django_db
def test_committed_changes_go_to_the_runner_and_reach_the_listeners_when_it_calls(
    django_capture_on_commit_callbacks,
):
    got: list[Changes] = []
    handed: list = []
    subscribed = list(changes._listeners)
    changes._listeners[:] = [got.append]  # only this test's listener: no real renders or pushes
    try:
        with changes_run_with(handed.append):
            with django_capture_on_commit_callbacks(execute=True):
                changes_on_commit(run_ids=[7], artifact_ids=[3, 2], ingested=True)
            assert got == []  # committed and handed over, not yet announced
            assert len(handed) == 1
            handed[0]()
        assert got == [Changes(run_ids=frozenset({7}), artifact_ids=(2, 3), ingested=True)]
        # Outside the block, the committing thread announces again.
        with django_capture_on_commit_callbacks(execute=True):
            changes_on_commit(run_ids=[8])
        assert len(got) == 2 and len(handed) == 1
    finally:
        changes._listeners[:] = subscribed
