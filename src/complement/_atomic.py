"""Files written whole or not at all: the base layer's atomic writes.

A run or a comparison can be killed at any moment (``kill -9``, a reboot), so every
artifact (status, configs, records, predictions, figures, reports, checkpoints) is
written to a temporary file *in the same directory*, flushed and ``fsync``\\ ed, then
moved over its name with ``os.replace``, which is atomic within one filesystem; the
directory is ``fsync``\\ ed too, so the rename itself survives a power loss. A reader
sees the old file or the new one, never a part of either.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, it becomes ``path``.

    The block writes the temporary file by name (``torch.save``, ``savefig``); on an
    exception it is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def remove_stale_temporaries(directory: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files that writers killed mid-write left in ``directory`` (and its
    sub-folders unless ``recursive=False``).

    Call it only when no writer is active there (a resumed run, after its liveness check)."""
    removed = []
    found = Path(directory).rglob(".*.tmp") if recursive else Path(directory).glob(".*.tmp")
    for path in found:
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
