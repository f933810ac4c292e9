"""The :class:`Task` record and the registry of tasks by name.

A task bundles what a training run needs and nothing about *how* it trains: three
datasets, a batch collator, a model factory, the label set and sensible
hyper-parameters. Every batch of ``DataLoader(task.train, collate_fn=task.collate_fn)``
is ``(inputs, target)``; ``task.build_model()(inputs)`` gives class-last logits:

========  ===========================================  ==============  =========
kind      inputs                                       logits          target
========  ===========================================  ==============  =========
image     float tensor ``(N, C, H, W)``                ``(N, K)``      ``(N,)``
text      dict ``input_ids``, ``attention_mask``       ``(N, K)``      ``(N,)``
token     dict ``input_ids``, ``attention_mask``       ``(N, L, K)``   ``(N, L)``
lm        long tensor ``(N, L)`` of token ids          ``(N, L, V)``   ``(N, L)``
========  ===========================================  ==============  =========

Targets are int64; ``-100`` (``ignore_index``) marks padding and positions that do not
count (continuation word pieces in token tasks).

``build_task(name, **options)`` builds a registered task; ``available_tasks()`` lists
them; ``task_options(name)`` shows a task's options and their defaults; ``task_card(name)``
its data card (:mod:`.cards`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from .cards import DataCard

KINDS = ("image", "text", "token", "lm")
IGNORE_INDEX = -100
DEFAULT_KEYS = ("optimizer", "lr", "batch_size", "max_epochs", "weight_decay")


@dataclass
class Task:
    """Data, model factory and defaults of one task (see the module docstring for batches)."""

    name: str
    kind: str
    train: Dataset = field(repr=False)
    val: Dataset = field(repr=False)
    test: Dataset = field(repr=False)
    num_classes: int
    class_names: list[str] = field(repr=False)
    # A fresh, randomly initialized model per call; the caller seeds it (torch.manual_seed).
    build_model: Callable[[], nn.Module] = field(repr=False)
    collate_fn: Callable[[list], Any] | None = field(default=None, repr=False)
    ignore_index: int = IGNORE_INDEX
    # Hyper-parameters that train this task well on a 2-core CPU: optimizer, lr, batch_size,
    # max_epochs, weight_decay.
    defaults: dict[str, Any] = field(default_factory=dict)
    # Provenance for reports: data source, split sizes, class counts, options, noise applied.
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"task kind must be one of {KINDS}; got {self.kind!r}")
        if self.num_classes < 2:
            raise ValueError(
                f"task {self.name!r} has {self.num_classes} class(es) {self.class_names}: classification needs at "
                "least two (and COT's complement, the wrong classes, needs one). Check the label column."
            )
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"task {self.name!r}: {len(self.class_names)} class names for num_classes={self.num_classes}"
            )
        missing = [key for key in DEFAULT_KEYS if key not in self.defaults]
        if missing:
            raise ValueError(f"task {self.name!r}: defaults lack {missing}")

    def summary(self) -> str:
        """One line: name, kind, classes and split sizes."""
        train, val, test = (len(split) for split in (self.train, self.val, self.test))  # type: ignore[arg-type]
        return f"{self.name} ({self.kind}): {self.num_classes} classes, train {train} / val {val} / test {test}"


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its builder, a one-line summary, preset options and its data card."""

    name: str
    builder: Callable[..., Task]
    summary: str
    preset: dict[str, Any] = field(default_factory=dict)
    card: DataCard | None = None


_REGISTRY: dict[str, TaskSpec] = {}
ALIASES: dict[str, str] = {}


def register_task(
    name: str, summary: str, *, card: DataCard | None = None, **preset: Any
) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Decorator: register ``builder(**options) -> Task`` under ``name``, with its data ``card``."""

    def decorate(builder: Callable[..., Task]) -> Callable[..., Task]:
        register_preset(name, builder, summary, card=card, **preset)
        return builder

    return decorate


def register_preset(
    name: str, builder: Callable[..., Task], summary: str, *, card: DataCard | None = None, **preset: Any
) -> None:
    """Register ``builder`` under ``name`` with some options fixed by default (still overridable)."""
    if name in _REGISTRY:
        raise ValueError(f"task {name!r} is already registered")
    accepted = _option_names(builder)
    unknown = sorted(set(preset) - set(accepted))
    if unknown:
        raise TypeError(f"preset {name!r}: {builder.__name__} has no options {unknown}")
    _REGISTRY[name] = TaskSpec(name, builder, summary, dict(preset), card)


def _option_names(builder: Callable[..., Task]) -> list[str]:
    return [p.name for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]


def _spec(name: str) -> TaskSpec:
    key = ALIASES.get(name, name)
    if key not in _REGISTRY:
        names = sorted(_REGISTRY) + [f"{alias} (= {target})" for alias, target in sorted(ALIASES.items())]
        raise ValueError(f"unknown task {name!r}; choose from {names}")
    return _REGISTRY[key]


def available_tasks() -> dict[str, str]:
    """Registered task names and their one-line summaries."""
    return {name: spec.summary for name, spec in _REGISTRY.items()}


def task_options(name: str) -> dict[str, Any]:
    """A task's options and their defaults (presets applied); required options map to ``inspect.Parameter.empty``."""
    spec = _spec(name)
    params = inspect.signature(spec.builder).parameters
    return {key: spec.preset.get(key, params[key].default) for key in _option_names(spec.builder)}


def task_card(name: str) -> DataCard | None:
    """The data card registered with a task (None for a task registered without one)."""
    return _spec(name).card


def build_task(name: str, **options: Any) -> Task:
    """Build the task registered under ``name`` with keyword ``options`` (see ``task_options(name)``)."""
    spec = _spec(name)
    accepted = _option_names(spec.builder)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"task {spec.name!r} has no option(s) {unknown}; its options are {accepted}")
    required = [
        key
        for key, default in task_options(spec.name).items()
        if default is inspect.Parameter.empty and key not in options
    ]
    if required:
        raise TypeError(f"task {spec.name!r} needs option(s) {required}, e.g. data_path='path/to/data'")
    merged = {**spec.preset, **options}
    task = spec.builder(**merged)
    task.name = spec.name  # presets share a builder; the record carries the registered name
    task.info.setdefault("options", merged)
    return task
