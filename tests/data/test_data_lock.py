"""One writer per dataset: the lock waits for a live holder, names it, and never waits for a dead one.

The holder is a real second process (the lock is ``flock``; within one process it is re-entrant).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ttsctr.data.lock import DatasetBusyError, dataset_lock, held_by_this_process, lock_path

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ttsctr.data.lock import dataset_lock
    root, ready, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    with dataset_lock(root, "criteo", what="a holding test process"):
        ready.write_text("held")
        time.sleep(seconds)
    """
)


def _holder(root: Path, tmp_path: Path, seconds: float) -> subprocess.Popen:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(ready), str(seconds)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the holding process died before taking the lock"
        assert time.monotonic() < deadline, "the holding process did not take the lock within 60 s"
        time.sleep(0.05)
    return proc


def test_a_second_process_that_may_not_wait_is_told_who_holds_the_lock(tmp_path: Path) -> None:
    holder = _holder(tmp_path, tmp_path, seconds=60)
    try:
        with pytest.raises(DatasetBusyError) as err:
            with dataset_lock(tmp_path, "criteo", what="a second run", wait_seconds=0):
                pass
        message = str(err.value)
        assert f"pid {holder.pid}" in message and "a holding test process" in message
        assert str(lock_path(tmp_path, "criteo").absolute()) in message and "'criteo'" in message
        with dataset_lock(tmp_path, "avazu", wait_seconds=0):  # another dataset is not in the way
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_process_goes_on_when_the_holder_finishes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = _holder(tmp_path, tmp_path, seconds=1.5)
    started = time.monotonic()  # the holder keeps the lock 1.5 s from now
    with caplog.at_level(logging.WARNING, logger="ttsctr.data.lock"):
        with dataset_lock(tmp_path, "criteo", what="a second run", wait_seconds=120):
            waited = time.monotonic() - started
    holder.wait()
    assert waited > 1.2, f"the lock was granted after {waited:.2f} s, while the holder still held it"
    assert any(f"pid {holder.pid}" in r.getMessage() and "waits" in r.getMessage() for r in caplog.records)


def test_a_bounded_wait_ends_with_the_holder_named(tmp_path: Path) -> None:
    holder = _holder(tmp_path, tmp_path, seconds=60)
    try:
        with pytest.raises(DatasetBusyError, match=rf"still in use by pid {holder.pid}.* after 0.5 s"):
            with dataset_lock(tmp_path, "criteo", wait_seconds=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_holder_is_free_at_once(tmp_path: Path) -> None:
    holder = _holder(tmp_path, tmp_path, seconds=60)
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the note stays in the lock file
    holder.wait()
    assert "holder" in lock_path(tmp_path, "criteo").read_text()
    with dataset_lock(tmp_path, "criteo", wait_seconds=0):
        assert str(os.getpid()) in lock_path(tmp_path, "criteo").read_text()


def test_the_lock_is_reentrant_within_a_process_and_released_at_the_outermost_exit(tmp_path: Path) -> None:
    with dataset_lock(tmp_path, "criteo", what="a run"):
        with dataset_lock(tmp_path, "criteo", what="publishing", wait_seconds=0):
            assert held_by_this_process(tmp_path, "criteo")
        assert held_by_this_process(tmp_path, "criteo")
    assert not held_by_this_process(tmp_path, "criteo")
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from ttsctr.data.lock import dataset_lock\n"
         "with dataset_lock(sys.argv[1], 'criteo', wait_seconds=0): print('free')", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip() == "free", probe.stderr
