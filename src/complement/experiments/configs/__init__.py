"""The ``--config`` files shipped inside the package, so that a pip install runs them without a clone.

``complement compare --config mnist`` (or ``mnist.yaml``, or ``configs/mnist.yaml``, the path in a
clone of the repository, whose ``configs/`` folder is this one) reads the shipped ``mnist.yaml``
when no such file exists where the command runs; a file that does exist there is always the one
read. :func:`complement.experiments.cli.main` resolves the names with :func:`resolve_config_args`
before it parses the arguments (a comparison records ``--config mnist`` as typed).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

__all__ = ["resolve_config_args", "shipped_config", "shipped_configs"]

_SUFFIXES = (".yaml", ".yml")
_FOLDERS = (Path("."), Path("configs"))  # a bare name, or the clone's configs/ folder


def shipped_configs() -> dict[str, Path]:
    """The shipped configs by name (``mnist``, ``paper_cifar10``, ...), sorted."""
    folder = Path(str(resources.files(__name__)))
    return {path.stem: path for path in sorted(folder.iterdir()) if path.suffix in _SUFFIXES}


def shipped_config(value: str) -> Path | None:
    """The shipped file that ``--config value`` means, or ``None`` when ``value`` names a file that
    exists (it is read as it is) or no shipped config."""
    path = Path(value)
    if path.exists() or path.parent not in _FOLDERS:
        return None
    name = path.stem if path.suffix in _SUFFIXES else path.name
    return shipped_configs().get(name)


def resolve_config_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with each ``--config NAME`` (or ``--config=NAME``) that means a shipped config
    replaced by that file's path; everything else unchanged."""
    resolved = list(argv)
    for index, arg in enumerate(resolved):
        if arg == "--config" and index + 1 < len(resolved):
            found = shipped_config(resolved[index + 1])
            if found is not None:
                resolved[index + 1] = str(found)
        elif arg.startswith("--config="):
            found = shipped_config(arg.split("=", 1)[1])
            if found is not None:
                resolved[index] = f"--config={found}"
    return resolved
