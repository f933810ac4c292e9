"""Files written whole or not at all: the base layer's atomic writes.

A run or a comparison can be killed at any moment (``kill -9``, a reboot), so every
artifact (status, configs, records, predictions, figures, reports, checkpoints) is
written to a temporary file *in the same directory*, flushed and ``fsync``\\ ed, then
moved over its name with ``os.replace``, which is atomic within one filesystem; the
directory is ``fsync``\\ ed too, so the rename itself survives a power loss. A reader
sees the old file or the new one, never a part of either.

Permissions are those a plain ``open(path, "w")`` gives: a new file gets ``0o666`` less the
process umask (``0o644`` under the usual umask ``0o022``, ``0o600`` under ``0o077``), so a
shared data cache or run folder stays readable by whoever the umask lets read it; a file
written over keeps its permission bits. The temporary file is created as ``open`` creates
one (mode ``0o666``: the kernel applies the umask, and a directory's default ACL), not with
``tempfile.mkstemp``'s ``0o600``, and is ``chmod``\\ ed to the final mode before the rename
(a replaced file's bits, or the new file's again in case the writer replaced the temporary).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # Windows: no file-size limit to read
    resource = None  # type: ignore[assignment]


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


# mkstemp's flags: a new file only (never through a symbolic link), not inherited by child processes
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_CREATE |= getattr(os, "O_BINARY", 0)
_ATTEMPTS = 100


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new empty ``.<name>.<random>.tmp`` beside ``target``, created as ``open`` creates a file
    (mode ``0o666`` less the umask), and the permission bits it got."""
    for _ in range(_ATTEMPTS):
        temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temporary, _CREATE, 0o666)
        except FileExistsError:  # a name already taken: draw another, as mkstemp does
            continue
        try:
            return temporary, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(f"no free temporary file name beside {target} after {_ATTEMPTS} tries")


def _mode_for(target: Path, created: int) -> int:
    """The permission bits ``open(target, "w")`` would leave: an existing regular file's own (a symbolic
    link, which the rename replaces, does not count), else the new file's."""
    try:
        existing = os.lstat(target)
    except OSError:
        return created
    return stat.S_IMODE(existing.st_mode) & 0o777 if stat.S_ISREG(existing.st_mode) else created


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, it becomes ``path``.

    The block writes the temporary file by name (``torch.save``, ``savefig``); on an
    exception it is removed and ``path`` is left as it was. The file gets the permissions
    ``open(path, "w")`` would give it (see the module docstring): a new file ``0o666`` less
    the umask, a replaced one its old permission bits."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary, created = _create_temporary(target)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            # on the open file, so a read-only mode (kept from a read-only target) cannot lock us out
            mode = _mode_for(target, created)
            if hasattr(os, "fchmod"):
                os.fchmod(written.fileno(), mode)
            else:  # Windows before Python 3.13
                os.chmod(temporary, mode)
            os.fsync(written.fileno())  # the data and the mode
        os.replace(temporary, target)
    except BaseException as error:
        failure = _write_failure(target, temporary, error)
        temporary.unlink(missing_ok=True)
        if failure is not None:
            raise failure from error
        raise
    _fsync_directory(target.parent)


class WriteError(OSError):
    """A file could not be written for want of room: the message names the file and the cause."""


_NO_ROOM = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded"}
_LOW_SPACE = 1 << 20  # bytes free below which a failed write is put down to a full disk


def _write_failure(target: Path, temporary: Path, error: BaseException) -> WriteError | None:
    """A :class:`WriteError` naming ``target`` when ``error`` came from a full disk, a quota or
    the process's file-size limit (``ulimit -f``), else ``None``. The cause is found from the
    error number, or, for writers that lose it (``torch.save`` says ``unexpected pos``), from
    the free space and the limit, measured before the temporary file is removed."""
    if isinstance(error, WriteError) or not isinstance(error, (OSError, RuntimeError)):
        return None
    number = error.errno if isinstance(error, OSError) else None
    if number not in (None, errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return None
    try:
        written = temporary.stat().st_size
        free = shutil.disk_usage(target.parent).free
    except OSError:
        written, free = 0, None
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else None
    at_limit = limit is not None and limit != resource.RLIM_INFINITY and written >= limit
    if at_limit:
        cause, number = f"the file reached the process's file-size limit ({limit} bytes, ulimit -f)", errno.EFBIG
    elif number == errno.EFBIG:
        cause = "the file is larger than the filesystem allows"
    elif number in _NO_ROOM:
        cause = _NO_ROOM[number] + (f" ({free} bytes free)" if free is not None else "")
    elif free is not None and free < _LOW_SPACE:
        cause, number = f"no space left on the device ({free} bytes free)", errno.ENOSPC
    else:
        return None  # another failure: its own message says more than a guess would
    failure = WriteError(f"cannot write {target}: {cause}; make room or raise the limit, then run again")
    failure.errno = number
    return failure


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
