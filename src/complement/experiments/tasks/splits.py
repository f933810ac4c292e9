"""Deterministic, stratified train / val / test splits, and the classification pipeline.

The same ``seed`` always gives the same split. Each purpose (split, noise, ...) draws
from its own generator, so turning on label noise does not move the split.

The split orders the examples so that every prefix and every suffix is stratified
(each class spread evenly through the order): the test set is taken from the front,
the validation set next, and the training set from the back. So the test set does not
depend on ``train_size``, and the back holds one example of every class first, so any
``train_size >= K`` sees every class.

Sizes are counts (``int``) or fractions (``float`` in (0, 1)): ``val_size`` and
``test_size`` of the whole source, ``train_size`` of what remains after them.

Tasks on your files take optional ``val_path`` / ``test_path`` files; without one, 10% /
20% of the main file is held out (:func:`held_out_sizes`, :func:`read_held_out`).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from .harder import check_few_shot, check_imbalance, check_label_noise, flip_labels, long_tail_counts, take_per_class

T = TypeVar("T")
VAL_FRACTION, TEST_FRACTION = 0.1, 0.2  # of your data, held out when no val / test file is given


def generator(seed: int, purpose: str) -> torch.Generator:
    """An independent, reproducible random stream for ``purpose`` under ``seed``."""
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer; got {seed!r}")
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + zlib.crc32(purpose.encode())) % 2**63)


def resolve_size(value: int | float | None, n: int, name: str) -> int | None:
    """A count from a count or a fraction of ``n``; ``None`` stays ``None`` (use everything)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a count or a fraction in (0, 1); got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be a count or a fraction in (0, 1); got {value}")
        return max(1, round(value * n))
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def stratified_order(labels: Tensor | None, n: int, gen: torch.Generator) -> Tensor:
    """A random permutation of ``range(n)`` in which each class is spread evenly (see module doc)."""
    perm = torch.randperm(n, generator=gen)
    if labels is None or n == 0:
        return perm
    y = labels[perm]
    counts = torch.bincount(y)
    by_class = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[y[by_class]]
    # (rank + 1) / count: the last example of every class has key 1.0 and so sits at the back
    key = (rank + 1).double() / counts[y].double()
    return perm[torch.argsort(key, stable=True)]


@dataclass
class Split:
    """Indices of each split: into the main source, or into the separate val/test source when given."""

    train: Tensor
    val: Tensor
    test: Tensor

    def as_lists(self) -> dict[str, list[int]]:
        """The indices as plain lists, for ``Task.info`` (which rows of the source each split holds)."""
        return {"train": self.train.tolist(), "val": self.val.tolist(), "test": self.test.tolist()}


def _source_size(source: Tensor | int) -> tuple[Tensor | None, int]:
    return (None, int(source)) if isinstance(source, int) else (source, len(source))


def split_indices(
    source: Tensor | int,
    *,
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    name: str,
    val_source: Tensor | int | None = None,
    test_source: Tensor | int | None = None,
) -> Split:
    """Split ``source`` (class labels, or a count when there are none) into train / val / test.

    A ``val_source`` / ``test_source`` (labels or a count) is a separate file: that split
    comes from it (``val_size`` / ``test_size`` then subsample it) instead of the main source.
    """
    labels, n = _source_size(source)
    if n == 0:
        raise ValueError(f"{name} has no examples: its data is empty (a file with only a header row?); add examples")
    order = stratified_order(labels, n, generator(seed, "split"))
    start = 0
    chosen: dict[str, Tensor] = {}
    for split_name, size, separate in (("test", test_size, test_source), ("val", val_size, val_source)):
        if separate is not None:
            sep_labels, sep_n = _source_size(separate)
            sep_count = resolve_size(size, sep_n, f"{split_name}_size")
            count = sep_n if sep_count is None else sep_count
            if count > sep_n:
                raise ValueError(f"{split_name}_size={count} but the {split_name} file of {name} has {sep_n} examples")
            chosen[split_name] = stratified_order(sep_labels, sep_n, generator(seed, split_name))[:count]
            continue
        resolved = resolve_size(size, n, f"{split_name}_size")
        if resolved is None:
            raise ValueError(f"{split_name}_size is needed to split {name}")
        count = resolved
        if start + count >= n:
            taken = f" and the test split takes {start}" if start else ""
            raise ValueError(
                f"{split_name}_size={count} leaves no training examples: {name} has {n} examples{taken}; "
                "lower val_size / test_size"
            )
        chosen[split_name] = order[start : start + count]
        start += count
    pool = order[start:]
    n_train = resolve_size(train_size, len(pool), "train_size") or len(pool)
    if n_train > len(pool):
        raise ValueError(
            f"train_size={n_train} but only {len(pool)} examples of {name} remain after "
            f"val ({len(chosen['val'])}) and test ({len(chosen['test'])}); lower train_size or val_size / test_size"
        )
    return Split(train=pool[len(pool) - n_train :], val=chosen["val"], test=chosen["test"])


def held_out_sizes(
    val_size: int | float | None,
    test_size: int | float | None,
    val_path: str | Path | None,
    test_path: str | Path | None,
) -> tuple[int | float | None, int | float | None]:
    """``val_size`` / ``test_size`` of a task on your files: as given, else all of ``val_path`` /
    ``test_path`` (None), else 10% / 20% of the main data."""
    return (
        val_size if val_size is not None or val_path is not None else VAL_FRACTION,
        test_size if test_size is not None or test_path is not None else TEST_FRACTION,
    )


def read_held_out(
    read: Callable[[str | Path], T],
    val_path: str | Path | None,
    test_path: str | Path | None,
    classes: Callable[[T], Iterable[str]] | None = None,
) -> dict[str, T]:
    """``{"val": read(val_path), "test": read(test_path)}`` for the files given.

    With ``classes`` (the class names of what ``read`` returned), a validation file holding a
    single class is warned about (:func:`warn_single_class`)."""
    given = {name: read(path) for name, path in (("val", val_path), ("test", test_path)) if path is not None}
    if classes is not None and "val" in given:
        warn_single_class(val_path, classes(given["val"]))
    return given


def warn_single_class(path: str | Path | None, classes: Iterable[str]) -> None:
    """A UserWarning when the validation file ``path`` holds examples of one class only."""
    distinct = sorted(set(classes))
    if len(distinct) == 1:
        warnings.warn(
            f"val_path {path} holds only the class {distinct[0]!r}: validation accuracy and the best-checkpoint "
            "choice then measure that class alone. Add examples of the other classes to it, or leave val_path "
            f"out to hold out {VAL_FRACTION:.0%} of data_path",
            UserWarning,
            stacklevel=2,
        )


def held_out_sources(val_path: str | Path | None, test_path: str | Path | None) -> dict[str, str | None]:
    """The ``val_source`` / ``test_source`` entries of ``Task.info``."""
    return {"val_source": str(val_path) if val_path else None, "test_source": str(test_path) if test_path else None}


def check_train_covers(
    train_labels: Tensor, other_labels: Tensor, class_names: Sequence[str], split_name: str, name: str
) -> None:
    """Every class present in val / test must have training examples."""
    present = set(torch.unique(train_labels).tolist())
    missing = sorted(set(torch.unique(other_labels).tolist()) - present)
    if missing:
        names = [class_names[c] for c in missing]
        raise ValueError(
            f"{name}: class(es) {names} appear in the {split_name} set but not in the training set; "
            "add training examples of them, raise train_size, or remove them from the data"
        )


@dataclass
class ClassificationSplit:
    """A split of a labeled source after the harder variants; ``train_targets`` may be noisy."""

    train: Tensor
    val: Tensor
    test: Tensor
    train_targets: Tensor
    clean_train_targets: Tensor
    info: dict[str, Any] = field(default_factory=dict)


def split_classification(
    labels: Tensor,
    class_names: Sequence[str],
    *,
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    few_shot: int | None = None,
    imbalance: float = 1.0,
    label_noise: float = 0.0,
    name: str,
    val_labels: Tensor | None = None,
    test_labels: Tensor | None = None,
) -> ClassificationSplit:
    """Split, then apply few-shot, long-tail and label noise to the training set (in that order)."""
    # validate first: a bad option should fail before any work
    few_shot = check_few_shot(few_shot)
    imbalance = check_imbalance(imbalance)
    label_noise = check_label_noise(label_noise)
    num_classes = len(class_names)
    split = split_indices(
        labels,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        name=name,
        val_source=val_labels,
        test_source=test_labels,
    )
    train = split.train
    available = torch.bincount(labels[train], minlength=num_classes)
    if few_shot is not None:
        if few_shot > int(available.min()):
            poorest = int(available.argmin())
            raise ValueError(
                f"few_shot={few_shot} but class {class_names[poorest]!r} has only {int(available[poorest])} "
                f"training examples in {name}; lower few_shot"
            )
        train = take_per_class(train, labels, [few_shot] * num_classes)
        available = torch.full((num_classes,), few_shot)
    info: dict[str, Any] = {}
    if imbalance > 1.0:
        counts = long_tail_counts(num_classes, int(available.min()), imbalance)
        train = take_per_class(train, labels, counts)
        info["imbalance_counts"] = counts
    clean = labels[train]
    noisy = flip_labels(clean, label_noise, num_classes, generator(seed, "label_noise"))
    info["flipped_labels"] = int((noisy != clean).sum())
    val_source = labels if val_labels is None else val_labels
    test_source = labels if test_labels is None else test_labels
    for split_name, source, index in (("val", val_source, split.val), ("test", test_source, split.test)):
        check_train_covers(clean, source[index], class_names, split_name, name)
    info["train_class_counts"] = torch.bincount(clean, minlength=num_classes).tolist()
    info["split"] = Split(train, split.val, split.test).as_lists()
    return ClassificationSplit(train, split.val, split.test, noisy, clean, info)
