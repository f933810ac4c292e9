"""A run's status file, kept honest: who runs it, whether it still does, and how it ended.

``status.json`` holds one of

=================  =============================================================
``running``        with ``pid``, ``host``, ``started`` and a ``heartbeat`` time
                   that the run refreshes at least every ``HEARTBEAT_SECONDS``
``complete``       trained, tested, predictions and record written
``diverged``       the training loss became non-finite or left the divergence
                   bound (:mod:`complement.training.divergence`)
``failed``         an error stopped it (``error`` says which)
``interrupted``    stopped by Ctrl-C / SIGTERM
=================  =============================================================

A run killed outright (``kill -9``, a crash, a reboot) cannot write its status, so
:func:`read_status` also checks a ``running`` run's process: on the same host, a
process that no longer exists (or is another process with the same pid) means
``interrupted``; on another host, a heartbeat older than ``STALE_AFTER_SECONDS``
does. Every status but ``complete`` can be resumed. (The heartbeat itself is written by
:class:`complement.experiments.runs.fit.Heartbeat`; this module imports no training library.)
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._atomic import write_json

STATUS_FILE = "status.json"
STATUSES = ("running", "complete", "diverged", "failed", "interrupted")
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 600.0


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command name


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return start is None or _process_start(pid) in (None, start)


def write_status(run_dir: Path, status: str, **details: Any) -> None:
    assert status in STATUSES, status
    data: dict[str, Any] = {"status": status, "time": time.time(), **details}
    if status == "running":
        pid = os.getpid()
        data.update(pid=pid, host=socket.gethostname(), process_start=_process_start(pid), heartbeat=time.time())
    write_json(Path(run_dir) / STATUS_FILE, data)


def write_final_status(run_dir: Path, status: str, **details: Any) -> None:
    """Record how a run ended, whenever the file can be written at all; never raise, so that the
    error that ended the run is the one reported.

    On a full disk the atomic write (a new file) fails, but the old ``status.json`` has its
    blocks already: its bytes are overwritten in place, padded with spaces to its length
    (still valid JSON). Not atomic, but a torn file reads as ``interrupted``, no worse than
    the ``running`` it replaces."""
    try:
        write_status(run_dir, status, **details)
        return
    except OSError:
        pass
    path = Path(run_dir) / STATUS_FILE
    try:
        with open(path, "r+b") as file:
            old_size = os.fstat(file.fileno()).st_size
            error = str(details.get("error", ""))
            data = b""
            for keep in (len(error), 200, 60, 0):  # shorten the error until it fits the old file's bytes
                data = json.dumps({"status": status, "time": round(time.time()), "error": error[:keep]}).encode()
                if len(data) <= old_size:
                    break
            file.write(data + b" " * max(old_size - len(data), 0))
            file.truncate()
            file.flush()
            os.fsync(file.fileno())
    except OSError:
        pass  # nothing can be written: the status stays "running", read back as interrupted


@dataclass(frozen=True)
class RunStatus:
    """What :func:`read_status` found: ``status`` (effective), and the file's fields."""

    status: str | None  # None: no status file (the run never started)
    detail: str = ""
    data: dict[str, Any] | None = None

    @property
    def alive(self) -> bool:
        return self.status == "running"


def read_status(run_dir: Path) -> RunStatus:
    """The run's status, with a ``running`` run whose process is gone reported as ``interrupted``."""
    path = Path(run_dir) / STATUS_FILE
    if not path.exists():
        return RunStatus(None, "not started")
    try:
        data = json.loads(path.read_text())
        status = data["status"]
    except (ValueError, KeyError, TypeError):
        return RunStatus("interrupted", f"unreadable {STATUS_FILE}; treated as interrupted")
    if status != "running":
        detail = data.get("error", "")
        return RunStatus(status, detail, data)
    age = time.time() - float(data.get("heartbeat", 0))
    where = f"pid {data.get('pid')} on {data.get('host')}"
    if data.get("host") == socket.gethostname():
        if _alive(int(data.get("pid", -1)), data.get("process_start")):
            return RunStatus("running", f"{where}, heartbeat {age:.0f} s ago", data)
        return RunStatus("interrupted", f"{where} no longer runs (killed?); last heartbeat {age:.0f} s ago", data)
    if age > STALE_AFTER_SECONDS:
        return RunStatus("interrupted", f"{where}: no heartbeat for {age:.0f} s", data)
    return RunStatus("running", f"{where}, heartbeat {age:.0f} s ago", data)
