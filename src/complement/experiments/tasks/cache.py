"""The data cache: the folder for downloaded data and what is derived from it, and its ``.npz`` files.

:func:`cache_dir` is ``$COMPLEMENT_DATA`` if set, else ``$XDG_CACHE_HOME/complement``, else
``~/.cache/complement``; ``scripts/setup.sh`` asks this function, so there is one rule.
Cache files hold plain arrays: written whole or not at all, read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from complement._atomic import atomic_path


def cache_dir() -> Path:
    """The data cache: ``$COMPLEMENT_DATA``, else ``$XDG_CACHE_HOME/complement``, else ``~/.cache/complement``."""
    # an empty variable counts as unset, as in the XDG spec and in bash's ${VAR:-default}
    if os.environ.get("COMPLEMENT_DATA"):
        return Path(os.environ["COMPLEMENT_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base).expanduser() / "complement"


def write_npz(path: Path, **arrays: Any) -> None:
    """Write the numpy ``arrays`` to ``path`` atomically: a reader sees the whole file or none."""
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` cache file, read without unpickling."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}
