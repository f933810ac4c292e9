"""MkDocs hook: a public function or class on an API page without a docstring is a warning, so
``mkdocs build --strict`` fails on it (mkdocstrings would render its signature alone, silently).

The objects checked are those the API pages render (each ``::: module`` in docs/api/, with
``filters: public``): the module, and its public module-level functions and classes (a class's own
docstring or its ``__init__``'s, which ``merge_init_into_class`` shows). Methods are left out: most
are overrides (``forward``, Lightning's hooks) documented where they are declared.
``KNOWN_MISSING`` lists the gaps found when the site was added; remove an entry with its docstring
(an entry that has one is a warning too, so the list only shrinks).

``KNOWN_GRIFFE_WARNINGS`` does the same for griffe's warnings about docstrings written before the
site: each one that matches is shown as INFO instead of failing the build, and one that no longer
appears is a warning (remove it from the list).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import griffe

log = logging.getLogger("mkdocs.hooks.docstrings")

KNOWN_MISSING: frozenset[str] = frozenset()


# (file, text) pairs: CotModule documents two pairs of arguments as one entry each.
KNOWN_GRIFFE_WARNINGS: tuple[tuple[str, str], ...] = ()
_seen: set[tuple[str, str]] = set()


class _KnownWarnings(logging.Filter):
    """Turns the griffe warnings of ``KNOWN_GRIFFE_WARNINGS`` into INFO (before any handler counts them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            message = record.getMessage().lower()
            for known in KNOWN_GRIFFE_WARNINGS:
                if all(part in message for part in known):
                    _seen.add(known)
                    record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_FILTER = _KnownWarnings()


def _documented(obj: Any) -> bool:
    if obj.docstring and obj.docstring.value.strip():
        return True
    init = obj.members.get("__init__") if obj.is_class else None
    return bool(init is not None and init.docstring and init.docstring.value.strip())


def undocumented(docs_dir: Path, search_paths: list[str]) -> list[str]:
    """The paths (as shown on the pages) of the checked objects without a docstring."""
    texts = [page.read_text(encoding="utf-8") for page in docs_dir.joinpath("api").rglob("*.md")]
    identifiers = sorted({name for text in texts for name in re.findall(r"^::: ([\w.]+)", text, re.MULTILINE)})
    loader = griffe.GriffeLoader(search_paths=search_paths)
    for package in sorted({identifier.split(".")[0] for identifier in identifiers}):
        loader.load(package)
    loader.resolve_aliases(implicit=True, external=False)
    missing = []
    for identifier in identifiers:
        module = loader.modules_collection[identifier]
        if not _documented(module):
            missing.append(identifier)
        for name, member in module.members.items():
            if not member.is_public or member.is_attribute or member.is_module:
                continue
            try:
                target = member.final_target if member.is_alias else member
            except griffe.AliasResolutionError:  # an import from outside the package: documented there
                continue
            if (target.is_function or target.is_class) and not _documented(target):
                missing.append(f"{identifier}.{name}")
    return missing


def on_config(config: Any) -> None:
    _seen.clear()
    griffe_log = logging.getLogger("mkdocs.plugins.griffe")  # where mkdocstrings sends griffe's messages
    if _FILTER not in griffe_log.filters:
        griffe_log.addFilter(_FILTER)


def on_post_build(config: Any) -> None:
    for known in KNOWN_GRIFFE_WARNINGS:
        if known not in _seen:
            log.warning("griffe no longer warns about %s in %s: remove it from KNOWN_GRIFFE_WARNINGS", *known[::-1])


def on_pre_build(config: Any) -> None:
    docs_dir = Path(config["docs_dir"])
    missing = set(undocumented(docs_dir, [str(docs_dir.parent / "src")]))
    for path in sorted(missing - KNOWN_MISSING):
        log.warning("%s is on an API page but has no docstring", path)
    for path in sorted(KNOWN_MISSING - missing):
        log.warning("%s has a docstring now (or is gone): remove it from KNOWN_MISSING in %s", path, __file__)
