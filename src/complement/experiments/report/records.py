"""The data contract between the training CLI and the compare report: ``RunRecord``.

One ``RunRecord`` per training run (one method, one seed). The CLI fills it:

- ``method``: ``"ce"`` (cross-entropy baseline), ``"cot"`` (COT, alternate steps),
  ``"ce_2x"`` (CE with as many forward/backward passes as COT), ``"gce"``, ...
- ``seed``: the run's seed.
- ``history``: one dict per epoch with at least ``epoch`` (1-based), ``passes``
  (cumulative forward+backward passes over training batches: +1 per batch for a CE
  epoch, +2 per batch for a COT alternate epoch) and ``val_acc``; usually also
  ``train_loss`` and the other ``val_*`` metrics of :func:`complement.metrics.classification_metrics`.
- ``test``: final test metrics, the keys of ``classification_metrics`` prefixed ``test_``
  (``test_acc``, ``test_precision``, ``test_nll``, ``test_ece``, ``test_complement_entropy``).
- ``predictions_path``: a ``torch.save``d dict ``{"probs": float (M, C), "target": long (M,)}``
  of the test set, or ``None`` (the run is then left out of the prediction figures).
- ``run_dir``: the run's output directory.
- optional ``task``, ``num_classes`` and ``wall_time_s``; records of one report must agree
  on the task and the class count.
- optional ``facts``: what the run was, for the report: ``sizes`` (train, val, test),
  ``class_names``, ``train_class_counts`` (when the task records them), ``train`` (the
  resolved hyper-parameters), ``versions`` (python, torch, lightning, complement) and
  ``machine`` (platform, CPU count, torch threads, accelerator).
- optional ``robust``: the run's adversarial evaluation (``--robust.*``, ``complement robust``;
  docs/robustness.md), empty when it had none: ``settings`` (``attacks``, ``eps``, ``steps``,
  ``examples``), ``examples`` (how many test examples were attacked), ``results`` (one
  ``{attack, eps, correct, total}`` per attack and ε, with ``clean`` at ε 0, the per-example
  ``worst`` case at each ε and PGD at ε 1 for the masking check), ``checks`` (the masking
  checks: ``{name, passed, detail, eps}``, ``eps`` None for one that concerns every ε) and
  ``wall_time_s``. Its accuracies are also in ``test``, under :func:`robust_key`
  (``test_robust_acc_pgd_eps0.3``, ``test_robust_acc_worst_eps0.3``), for the paired statistics.

:func:`save_records` / :func:`load_records` keep a list of records as ``records.json``
in a compare directory. Paths are stored relative to that directory, so the tree can be
moved as a whole; :func:`load_records` gives them back as absolute paths.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..._atomic import write_text

RECORDS_FILE = "records.json"
FORMAT_VERSION = 1
REQUIRED_HISTORY_KEYS = ("epoch", "passes", "val_acc")
ROBUST_PREFIX = "test_robust_acc_"
WORST = "worst"  # the per-example worst case over the attacks run at one ε
_ROBUST_KEY = re.compile(r"^test_robust_acc_(?P<attack>[a-z0-9_]+?)_eps(?P<eps>[0-9.e+-]+)$")


def robust_key(attack: str, eps: float) -> str:
    """The ``test`` key of the accuracy under ``attack`` at ``eps``: ``test_robust_acc_pgd_eps0.3``."""
    return f"{ROBUST_PREFIX}{attack}_eps{eps:.6g}"


def parse_robust_key(key: str) -> tuple[str, float] | None:
    """``(attack, eps)`` of a :func:`robust_key`; None for any other key."""
    match = _ROBUST_KEY.match(key)
    if match is None:
        return None
    try:
        return match["attack"], float(match["eps"])
    except ValueError:
        return None


def format_eps(eps: float) -> str:
    """ε as people write it: ``0.3``, and ``8/255`` for the multiples of 1/255 that are no short decimal."""
    short = f"{eps:g}"
    steps = eps * 255
    if len(short.rsplit(".", maxsplit=1)[-1]) > 3 and steps >= 0.5 and math.isclose(steps, round(steps), rel_tol=1e-4):
        return f"{round(steps)}/255"
    return short


@dataclass
class RunRecord:
    """One training run's results; see the module docstring for each field."""

    method: str
    seed: int
    history: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, float] = field(default_factory=dict)
    predictions_path: str | None = None
    run_dir: str = ""
    task: str | None = None
    num_classes: int | None = None
    wall_time_s: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    robust: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method} (seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"RunRecord: unknown fields {unknown}; known fields are {sorted(known)}")
        return cls(**data)


def validate_records(records: list[RunRecord]) -> None:
    """Raise ``ValueError`` with the reason when records cannot go into one report."""
    if not isinstance(records, (list, tuple)) or not records:
        raise ValueError("no run records to report on: pass a non-empty list of RunRecord")
    seen: set[tuple[str, int]] = set()
    for record in records:
        if not isinstance(record, RunRecord):
            raise TypeError(f"expected RunRecord objects; got {type(record).__name__}")
        if not isinstance(record.method, str) or not record.method:
            raise ValueError(f"RunRecord.method must be a non-empty string; got {record.method!r}")
        if (record.method, record.seed) in seen:
            raise ValueError(f"two records for {record.label}: each (method, seed) must appear once")
        seen.add((record.method, record.seed))
        if not record.history:
            raise ValueError(f"{record.label}: empty history; the report needs one entry per epoch")
        for entry in record.history:
            missing = [key for key in REQUIRED_HISTORY_KEYS if key not in entry]
            if missing:
                raise ValueError(f"{record.label}: history entry {entry!r} lacks {missing}")
        epochs = [entry["epoch"] for entry in record.history]
        if epochs != sorted(epochs) or len(set(epochs)) != len(epochs) or epochs[0] < 1:
            raise ValueError(f"{record.label}: history epochs must be 1-based and increasing; got {epochs}")
    tasks = {record.task for record in records if record.task is not None}
    if len(tasks) > 1:
        raise ValueError(f"records come from different tasks {sorted(tasks)}; report one task at a time")
    declared = {record.num_classes for record in records if record.num_classes is not None}
    if len(declared) > 1:
        raise ValueError(f"records declare different class counts {sorted(declared)}; they are not the same task")


def load_predictions(record: RunRecord) -> tuple[Tensor, Tensor]:
    """Load and check a record's test predictions: ``(probs float (M, C), target long (M,))``."""
    path = record.predictions_path
    if path is None:
        raise ValueError(f"{record.label} has no predictions_path")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{record.label}: predictions file {path!r} does not exist")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "probs" not in data or "target" not in data:
        raise ValueError(f"{record.label}: {path!r} must hold a dict with 'probs' (M, C) and 'target' (M,)")
    probs, target = data["probs"], data["target"]
    if not isinstance(probs, Tensor) or probs.dim() != 2 or not probs.is_floating_point():
        raise ValueError(f"{record.label}: 'probs' must be a float tensor (M, C); got {_describe(probs)}")
    if not isinstance(target, Tensor) or target.dim() != 1 or target.shape[0] != probs.shape[0]:
        raise ValueError(f"{record.label}: 'target' must be (M,) = ({probs.shape[0]},); got {_describe(target)}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"{record.label}: 'target' must hold integer class indices; got dtype {target.dtype}")
    probs, target = probs.float(), target.long()
    if probs.numel() and (
        probs.min() < 0 or probs.max() > 1 or not torch.allclose(probs.sum(1), torch.ones(1), atol=1e-3)
    ):
        raise ValueError(f"{record.label}: 'probs' rows must be probabilities summing to 1 (save softmax, not logits)")
    num_classes = probs.shape[1]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"{record.label}: 'target' holds classes outside [0, {num_classes - 1}]")
    if record.num_classes is not None and record.num_classes != num_classes:
        raise ValueError(
            f"{record.label}: num_classes={record.num_classes} but its predictions have {num_classes} classes"
        )
    return probs, target


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _records_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path / RECORDS_FILE if path.is_dir() or path.suffix != ".json" else path


def _relative_to(path: str | None, base: Path) -> str | None:
    if not path:
        return path
    try:
        return os.path.relpath(os.path.abspath(path), base.resolve())
    except ValueError:  # another drive on Windows: keep it absolute
        return os.path.abspath(path)


def save_records(records: list[RunRecord], path: str | os.PathLike) -> Path:
    """Write ``records.json`` (``path`` is the compare directory or the file); return its path."""
    file = _records_path(path)
    items = []
    for record in records:
        data = record.to_dict()
        data["predictions_path"] = _relative_to(record.predictions_path, file.parent)
        data["run_dir"] = _relative_to(record.run_dir, file.parent) or ""
        items.append(data)
    text = json.dumps({"format_version": FORMAT_VERSION, "records": items}, indent=2, default=_json_default)
    write_text(file, text + "\n")
    return file


def load_records(path: str | os.PathLike) -> list[RunRecord]:
    """Read ``records.json`` written by :func:`save_records` (the compare directory or the file)."""
    file = _records_path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no records file at {str(file)!r}")
    data = json.loads(file.read_text())
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(file)!r} is not a records file of format version {FORMAT_VERSION}")
    base = file.parent.resolve()
    records = []
    for item in data["records"]:
        record = RunRecord.from_dict(item)
        if record.predictions_path:
            record.predictions_path = os.path.normpath(base / record.predictions_path)
        if record.run_dir:
            record.run_dir = os.path.normpath(base / record.run_dir)
        records.append(record)
    return records


def _json_default(value: Any) -> Any:
    # Tensors and numpy scalars that slipped into history/test dicts are stored as numbers.
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in records.json")
