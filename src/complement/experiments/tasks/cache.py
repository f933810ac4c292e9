"""The data cache: the folder for downloaded data and what is derived from it, and its ``.npz`` files.

:func:`cache_dir` is ``$COMPLEMENT_DATA`` if set, else ``$XDG_CACHE_HOME/complement``, else
``~/.cache/complement``; ``scripts/setup.sh`` asks this function, so there is one rule.
Cache files hold plain arrays: written whole or not at all, read with ``allow_pickle=False``
once the sizes their zip directory and ``.npy`` headers announce are checked (a small file
cannot unpack to gigabytes). A cache derived from a pinned source can carry a checksum file,
``<name>.npz.sha256``, with the source's hash and the ``.npz`` file's own: it ties the cache to
that source and catches a file this code did not write. It is no signature: whoever can write
the cache folder can write both files, so callers still check what the arrays hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from complement._atomic import atomic_path, write_json


class StaleCache(ValueError):
    """A cache file that its checksum file does not vouch for (absent, or another source or content): rebuild it."""


def cache_dir() -> Path:
    """The data cache: ``$COMPLEMENT_DATA``, else ``$XDG_CACHE_HOME/complement``, else ``~/.cache/complement``."""
    # an empty variable counts as unset, as in the XDG spec and in bash's ${VAR:-default}
    if os.environ.get("COMPLEMENT_DATA"):
        return Path(os.environ["COMPLEMENT_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base).expanduser() / "complement"


def checksum_path(path: Path) -> Path:
    """The checksum file of the cache file ``path``: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_npz(path: Path, *, source_sha256: str | None = None, **arrays: Any) -> None:
    """Write the numpy ``arrays`` to ``path`` atomically: a reader sees the whole file or none.

    With ``source_sha256`` (the hash of what the arrays were derived from), the checksum file
    is written after it, atomically too; a reader that comes between the two sees a mismatch,
    which only means a rebuild."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        digest = _file_sha256(temporary)  # of these bytes, not of whatever another writer renames over them
    if source_sha256 is not None:
        write_json(checksum_path(path), {"source_sha256": source_sha256, "npz_sha256": digest})


def _check_checksum(path: Path, source_sha256: str) -> None:
    """A :class:`StaleCache` unless ``path`` and its checksum file exist and match ``source_sha256`` and its bytes."""
    checksum = checksum_path(path)
    if not path.is_file() or not checksum.is_file():
        raise StaleCache(f"{path}: {'no such file' if not path.is_file() else f'no checksum file {checksum.name}'}")
    with open(checksum, "rb") as file:
        text = file.read(4096)  # a few hashes; a huge file is not ours
    try:
        recorded = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("source_sha256") != source_sha256:
        raise StaleCache(f"{path}: {checksum.name} does not name the source SHA-256 {source_sha256}")
    if recorded.get("npz_sha256") != _file_sha256(path):
        raise StaleCache(f"{path}: its SHA-256 is not the one {checksum.name} records; it changed after it was written")


def _check_sizes(path: Path, max_bytes: int | None) -> None:
    """Refuse an archive whose members would unpack to more than ``max_bytes`` (default: the file's own size)."""
    cap = path.stat().st_size if max_bytes is None else max_bytes
    fix = "delete it to have it rebuilt"
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(info.file_size for info in members)  # what the zip directory declares; nothing unpacked yet
            if total > cap:
                raise ValueError(
                    f"{path}: its arrays would unpack to {total:,} bytes, more than the {cap:,} expected; {fix}"
                )
            headers = [(info, _npy_header(archive, info)) for info in members]
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error}); {fix}") from None
    for info, header in headers:
        if header is None:
            raise ValueError(f"{path}: member {info.filename!r} is not a .npy array (version 1 or 2); {fix}")
        shape, dtype = header
        needed = math.prod(shape) * dtype.itemsize  # what numpy would allocate before reading the data
        if needed > info.file_size:
            raise ValueError(
                f"{path}: {info.filename} announces a {dtype} array of shape {shape} ({needed:,} bytes) "
                f"in {info.file_size:,} bytes; {fix}"
            )


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype] | None:
    """The shape and dtype a ``.npy`` member announces (only its first bytes are unpacked); None if not one."""
    if not info.filename.endswith(".npy"):
        return None
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                return None
        except ValueError:  # numpy's words for a bad magic string or header
            return None
    return shape, dtype


def read_npz(path: Path, *, source_sha256: str | None = None, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` cache file, read without unpickling.

    The sizes are checked first: unpacked, the arrays may take at most ``max_bytes`` (default:
    the file's size, as :func:`write_npz` stores them uncompressed). With ``source_sha256``, a
    :class:`StaleCache` unless the checksum file records it and the file's SHA-256, checked
    before anything is unpacked."""
    if source_sha256 is not None:
        _check_checksum(path, source_sha256)
    _check_sizes(path, max_bytes)
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error}); delete it to have it rebuilt") from None
