"""One process per run or comparison directory: an exclusive lock held while it trains.

``status.json`` says whether a run is alive, but only once the run has written it; two
``--resume`` started together both read the old status and both trained. The lock closes
that window: it is taken before anything else is read, and refused while held, naming the
holder. It is an ``fcntl.flock`` on ``<directory>/.lock``, released by the kernel when the
process ends however it ends (``kill -9`` included), so a stale lock cannot outlive its
process. Written by hand over ``filelock`` because that truncates the lock file on every
attempt, so the holder's pid could not be kept in it. Where ``fcntl`` is missing (Windows)
there is no lock and only the status check stands.

Within one process the lock is re-entrant: ``fit`` takes it to resume, and the training it
then calls takes it again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # realpath of a directory locked by this process -> nesting depth


@contextlib.contextmanager
def directory_lock(directory: Path, what: str = "run") -> Iterator[None]:
    """Hold the exclusive lock of ``directory`` (an existing run or comparison directory) for the block."""
    key = os.path.realpath(directory)
    if key in _held or fcntl is None:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    fd = os.open(Path(directory) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"{directory} is in use by another complement process ({_holder(fd)}); "
                f"wait for it to end, or stop it, before resuming this {what}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int, wait_s: float = 1.0) -> str:
    """Who holds the lock, as the holder wrote it just after taking it. Two processes started together can meet
    between the winner's flock and its write, so an empty file is read again for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        said = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if said or time.monotonic() >= deadline:
            return said or "a process that has not yet said its pid"
        time.sleep(0.01)
