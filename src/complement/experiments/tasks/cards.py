"""Data cards: the facts of each built-in data set in one place, registered with its task.

A :class:`DataCard` states what a task's data is, where it comes from, its licence, and
the split sizes and ``Task.defaults`` of the task built with its default options. Each
task module defines its cards beside its builders and passes them to ``register_task``;
``task_card(name)`` returns one, and :func:`cards_table` renders them all as the table of
``docs/data.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .base import DEFAULT_KEYS, available_tasks, task_card

Size = int | float | None


@dataclass(frozen=True)
class DataCard:
    """One data set's facts, as the task built with its default options has them.

    ``train`` / ``val`` / ``test``: split sizes in examples (images, texts, sentences or
    documents), a fraction in (0, 1) of your data, or None for all the rest. ``defaults``:
    the task's ``Task.defaults`` (image tasks give a training set smaller than the default
    one more epochs, so your own images may get a higher ``max_epochs``).
    """

    data: str
    source: str
    licence: str
    train: Size
    val: Size
    test: Size
    defaults: Mapping[str, Any] = field(hash=False)

    def __post_init__(self) -> None:
        for name in ("data", "source", "licence"):
            if not getattr(self, name).strip():
                raise ValueError(f"a data card needs a {name}")
        for name, size in zip(("train", "val", "test"), self.sizes):
            if size is not None and (
                isinstance(size, bool) or not (size >= 1 if isinstance(size, int) else 0.0 < size < 1.0)
            ):
                raise ValueError(
                    f"data card {name} size must be a count >= 1, a fraction in (0, 1) or None; got {size!r}"
                )
        missing = [key for key in DEFAULT_KEYS if key not in self.defaults]
        if missing:
            raise ValueError(f"data card defaults lack {missing}")
        object.__setattr__(self, "defaults", MappingProxyType(copy.deepcopy(dict(self.defaults))))

    @property
    def sizes(self) -> tuple[Size, Size, Size]:
        """``(train, val, test)``."""
        return self.train, self.val, self.test

    def task_defaults(self) -> dict[str, Any]:
        """A fresh copy of ``defaults`` for a :class:`~.base.Task` to own."""
        return copy.deepcopy(dict(self.defaults))


def _cell(text: str) -> str:
    """``text`` safe in a Markdown table cell: no column breaks, no HTML tags."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _size(size: Size) -> str:
    if size is None:
        return "rest"
    return f"{size:.0%}" if isinstance(size, float) else f"{size:,}"


def _value(value: Any) -> str:
    """A default as the table shows it: a radius of whole grey levels as a fraction (8/255)."""
    if isinstance(value, float) and 0 < value < 0.1 and abs(value * 255 - round(value * 255)) < 1e-9:
        return f"{round(value * 255)}/255"
    return str(value)


def _defaults(defaults: Mapping[str, Any]) -> str:
    keys = [*DEFAULT_KEYS, *sorted(set(defaults) - set(DEFAULT_KEYS))]
    return ", ".join(f"{key}={_value(defaults[key])}" for key in keys)


def cards_table() -> str:
    """The Markdown table of every registered task's card, in ``available_tasks()`` order."""
    lines = [
        "| task | data | source | licence | train / val / test | defaults |",
        "|---|---|---|---|---|---|",
    ]
    for name in available_tasks():
        card = task_card(name)
        if card is None:
            continue
        sizes = " / ".join(_size(size) for size in card.sizes)
        lines.append(
            f"| `{name}` | {_cell(card.data)} | {_cell(card.source)} | {_cell(card.licence)} | {sizes} "
            f"| {_defaults(card.defaults)} |"
        )
    return "\n".join(lines) + "\n"
