"""One writer per dataset: an exclusive lock on ``<model_input_root>/<dataset>.lock``.

Publishing a dataset and a run that reads it must not interleave (a run would mix two
encodings). A ``kedro run`` holds its dataset's lock from its first node to its end (see
``ttsctr.hooks``); :func:`ttsctr.pipelines.data_processing.nodes.publish_model_input` takes it
too, so library code that publishes outside a run waits for a run in progress.

The lock is ``fcntl.flock`` on a file that is never deleted: the kernel releases it when the
holder exits in any way (``kill -9`` included), so a lock of a dead process is never in the way.
The file carries a note of the holder (host, pid, start time, what it does, since when) that the
waiting process prints. The lock is re-entrant within a process (the run's hook and the publish
node share it) and shared with forked workers of that process.

A second run on the same dataset **waits** for the first, printing who holds the lock every
minute; ``wait_seconds`` bounds the wait (0: stop at once with :class:`DatasetBusyError`).
Runs on different datasets do not wait for each other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ttsctr.errors import TTSCTRError
from ttsctr.processes import ProcessIdentity

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
_REPORT_EVERY_S = 60.0
_POLL_S = 0.25

_held: dict[str, list[int]] = {}  # lock path -> [fd, depth] of the locks this process holds
_held_guard = threading.Lock()


class DatasetBusyError(TTSCTRError):
    """Another live process holds the dataset's lock (and this one may not wait longer)."""


def lock_path(model_input_root: str | Path, dataset: str) -> Path:
    return Path(model_input_root) / f"{dataset}{LOCK_SUFFIX}"


def _holder_note(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        note = json.loads(os.read(fd, 1 << 16).decode() or "{}")
    except (OSError, ValueError):
        return "another process"
    holder = ProcessIdentity.parse(note.get("holder", ""))
    who = f"pid {holder.pid} on {holder.host}" if holder else "another process"
    return f"{who} ({note.get('what', 'a run')}, since {note.get('since', '?')})"


def _write_note(fd: int, what: str) -> None:
    note = {"holder": str(ProcessIdentity.current()), "what": what,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(note).encode())


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextlib.contextmanager
def dataset_lock(model_input_root: str | Path, dataset: str, *, what: str = "a run",
                 wait_seconds: float | None = None) -> Iterator[Path]:
    """Hold ``dataset``'s lock for the ``with`` block (waiting while another process holds it).

    ``wait_seconds``: None waits as long as it takes, 0 fails at once, otherwise at most that
    long; a failure raises :class:`DatasetBusyError` naming the holder and the lock file.
    """
    path = lock_path(model_input_root, dataset).absolute()
    key = str(path)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, dataset, what, wait_seconds)
        _write_note(fd, what)
        with _held_guard:
            _held[key] = [fd, 1]
        try:
            yield path
        finally:
            with _held_guard:
                _held[key][1] -= 1
                release = _held[key][1] == 0
                if release:
                    del _held[key]
            if release:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, dataset: str, what: str, wait_seconds: float | None) -> None:
    if _try_lock(fd):
        return
    holder = _holder_note(fd)
    if wait_seconds is not None and wait_seconds <= 0:
        raise DatasetBusyError(
            f"dataset {dataset!r} is in use by {holder} (lock {path}); {what} would mix its data with that "
            "run's. Start it again when that run has finished (or allow waiting: "
            "--params locking.wait_seconds=null waits as long as it takes)."
        )
    limit = "" if wait_seconds is None else f" (at most {wait_seconds:g} s)"
    log.warning("dataset %r is in use by %s; %s waits for it to finish%s (lock %s)", dataset, holder, what, limit, path)
    started = last_report = time.monotonic()
    while not _try_lock(fd):
        now = time.monotonic()
        if wait_seconds is not None and now - started >= wait_seconds:
            raise DatasetBusyError(
                f"dataset {dataset!r} is still in use by {_holder_note(fd)} after {wait_seconds:g} s (lock {path}); "
                "start this run again when that one has finished, or raise locking.wait_seconds"
            )
        if now - last_report >= _REPORT_EVERY_S:
            log.warning("still waiting for dataset %r (%s, %.0f s so far)", dataset, _holder_note(fd), now - started)
            last_report = now
        time.sleep(_POLL_S)
    log.info("dataset %r is free after %.1f s; %s goes on", dataset, time.monotonic() - started, what)


@contextlib.contextmanager
def exclusive_file_lock(path: str | Path) -> Iterator[None]:
    """A plain blocking ``flock`` on ``path`` (created) for the ``with`` block; the kernel frees it
    if the process dies. For short critical sections: no holder note, no waiting message."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def held_by_this_process(model_input_root: str | Path, dataset: str) -> bool:
    with _held_guard:
        return str(lock_path(model_input_root, dataset).absolute()) in _held
