"""Classification metrics for comparing CE and COT runs, built on torchmetrics.

``classification_metrics(num_classes)`` returns a ``MetricCollection`` with the keys

==========================  ===================================================================
``acc``                     micro accuracy (``MulticlassAccuracy(average="micro")``)
``precision``               macro precision, the mean of the per-class precisions (:class:`MacroPrecision`)
``nll``                     mean cross-entropy of the target, :class:`NegativeLogLikelihood`
``ece``                     expected calibration error, 15 bins, l1 (:class:`ExpectedCalibrationError`)
``complement_entropy``      mean ``H(q) / log(K - 1)`` in ``[0, 1]``, :class:`NormalizedComplementEntropy`
==========================  ===================================================================

The COT blog reported ``Precision(num_classes=...)`` of the torchmetrics of its day, whose
default averaging was *micro*: for single-label classification micro precision equals
accuracy, so the blog's "precision" is our ``acc``. ``precision`` here is the macro
average, which weighs rare classes as much as common ones; both are reported.

Inputs are logits ``(M, C)`` with targets ``(M,)``, or class-last ``(..., C)`` with
``(...)`` (e.g. token classification ``(N, L, C)`` / ``(N, L)``), flattened to rows.
Rows whose target is ``ignore_index`` are dropped once, before any metric sees them.
Log-probabilities work as logits too (``probs.log()``: the softmax gives back ``probs``).

Everything is a torchmetrics ``Metric`` (an ``nn.Module`` with ``update``/``compute``/
``reset`` and sum/cat states), so the collection can live on a ``LightningModule``, be
logged with ``self.log_dict`` and synchronizes across processes under DDP::

    self.val_metrics = classification_metrics(10).clone(prefix="val_")
    ...
    self.val_metrics.update(logits, target)
    self.log_dict(self.val_metrics, on_epoch=True)

Functional twins: :func:`negative_log_likelihood`, :func:`normalized_complement_entropy`,
:func:`expected_calibration_error` and :func:`classification_scores` (all metrics at once).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError
from torchmetrics.functional.classification import multiclass_calibration_error

from ._validation import check_targets, flatten_rows
from .losses import complement_entropy
from .losses._rules import normalizer

METRIC_NAMES = ("acc", "precision", "nll", "ece", "complement_entropy")
ECE_BINS = 15


def flatten_kept(logits: Tensor, target: Tensor, ignore_index: int | None = -100) -> tuple[Tensor, Tensor]:
    """Class-last ``(..., C)`` logits and ``(...)`` targets to ``(M, C)`` and ``(M,)`` kept rows.

    The package's row check (:func:`~complement._validation.flatten_rows`) and label range
    (:func:`~complement._validation.check_targets`). Rows with ``target == ignore_index`` are
    dropped (``None``: nothing is dropped). The result is detached: metrics never build autograd graphs."""
    logits, target, _ = flatten_rows(logits, target, who="metrics")
    logits, target = logits.detach(), target.detach()
    if ignore_index is not None:
        kept = target != ignore_index
        logits, target = logits[kept], target[kept]
    check_targets(target, logits.shape[-1], ignore_index, "metrics")
    return logits, target


def _nll_sum(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), target, reduction="sum")


def _complement_entropy_sum(logits: Tensor, target: Tensor) -> Tensor:
    # normalizer("max_entropy", K) is log(K - 1), and 1 for K = 2 where H is identically 0.
    scale = normalizer("max_entropy", logits.shape[-1])
    entropy = complement_entropy(logits.float(), target, reduction="none", normalization="none").neg()
    return entropy.sum() / scale


def _mean(total: Tensor, count: Tensor) -> Tensor:
    # No kept rows: NaN, like torchmetrics' MeanMetric, rather than a made-up 0.
    return total / count if count > 0 else torch.full_like(total, float("nan"))


def negative_log_likelihood(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy of the target class over kept rows (float32)."""
    logits, target = flatten_kept(logits, target, ignore_index)
    return _mean(_nll_sum(logits, target), torch.tensor(target.numel(), device=logits.device))


def normalized_complement_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean complement entropy ``H(q) / log(K - 1)`` over kept rows, in ``[0, 1]`` (1: flat complement)."""
    logits, target = flatten_kept(logits, target, ignore_index)
    return _mean(_complement_entropy_sum(logits, target), torch.tensor(target.numel(), device=logits.device))


def expected_calibration_error(
    logits: Tensor, target: Tensor, num_classes: int, n_bins: int = ECE_BINS, ignore_index: int = -100
) -> Tensor:
    """Top-label ECE (l1) with ``n_bins`` equal-width confidence bins, via torchmetrics."""
    logits, target = flatten_kept(logits, target, ignore_index)
    return multiclass_calibration_error(logits.float().softmax(-1), target, num_classes, n_bins=n_bins, norm="l1")


class _RowMean(Metric):
    """Mean of a per-row quantity with sum/count states (summed across processes)."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, ignore_index: int | None = -100, **kwargs: Any):
        super().__init__(**kwargs)
        self.ignore_index = ignore_index
        self.total: Tensor
        self.count: Tensor
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def _row_sum(self, logits: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, logits: Tensor, target: Tensor) -> None:
        logits, target = flatten_kept(logits, target, self.ignore_index)
        self.total += self._row_sum(logits, target).to(self.total.dtype)
        self.count += target.numel()

    def compute(self) -> Tensor:
        return _mean(self.total, self.count)


class NegativeLogLikelihood(_RowMean):
    """Mean cross-entropy of the target class (lower is better)."""

    higher_is_better = False

    def _row_sum(self, logits: Tensor, target: Tensor) -> Tensor:
        return _nll_sum(logits, target)


class NormalizedComplementEntropy(_RowMean):
    """Mean ``H(q) / log(K - 1)`` of the distribution over the wrong classes, in ``[0, 1]``.

    What COT's second step maximizes; 1 means the wrong classes share their mass evenly."""

    higher_is_better = None  # descriptive: a flat complement is COT's aim, not a quality score

    def _row_sum(self, logits: Tensor, target: Tensor) -> Tensor:
        return _complement_entropy_sum(logits, target)


class MacroPrecision(Metric):
    """Macro precision, the same value as ``MulticlassPrecision(num_classes, average="macro")``.

    torchmetrics counts through a C x C confusion matrix: C**2 memory per update, and
    N * C**2 when deterministic algorithms are on (a 2,000-word LM head asked for 160 GB).
    Three per-class counts (true positives, predictions, targets) give the same score in
    O(N + C). As in torchmetrics, a class never predicted scores 0, and classes neither
    predicted nor present are left out of the mean."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.true_positives: Tensor
        self.predicted: Tensor
        self.actual: Tensor
        for name in ("true_positives", "predicted", "actual"):
            self.add_state(name, torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        preds = logits.argmax(-1)
        # bincount of integer counts is exact on any device, whatever the determinism setting.
        count = functools.partial(torch.bincount, minlength=self.num_classes)
        self.true_positives += count(target[preds == target])
        self.predicted += count(preds)
        self.actual += count(target)

    def compute(self) -> Tensor:
        tp, predicted = self.true_positives.double(), self.predicted.double()
        score = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
        seen = (self.predicted + self.actual) > 0
        return (score[seen].sum() / seen.sum().clamp(min=1)).float()


class ExpectedCalibrationError(MulticlassCalibrationError):
    """``MulticlassCalibrationError`` (l1) that always applies the softmax to its input.

    torchmetrics applies it only when some value lies outside ``[0, 1]``, so logits that
    happen to lie in ``[0, 1]`` (small logits early in training) would be read as probabilities."""

    def __init__(self, num_classes: int, n_bins: int = ECE_BINS, ignore_index: int | None = None, **kwargs: Any):
        super().__init__(num_classes, n_bins=n_bins, norm="l1", ignore_index=ignore_index, **kwargs)

    def update(self, logits: Tensor, target: Tensor) -> None:
        super().update(logits.detach().float().softmax(-1), target)


class ClassificationMetrics(MetricCollection):
    """A ``MetricCollection`` that flattens class-last input and drops ignored rows once.

    Its members then see clean ``(M, C)`` logits and ``(M,)`` targets."""

    def __init__(self, metrics: dict[str, Metric | MetricCollection], ignore_index: int | None = -100, **kwargs: Any):
        # Compute groups would make members share state tensors by reference; the savings are
        # negligible here and independent states keep per-metric logging (log_dict) simple.
        super().__init__(metrics, compute_groups=False, **kwargs)
        self.ignore_index = ignore_index

    def update(self, logits: Tensor, target: Tensor) -> None:  # type: ignore[override]
        super().update(*flatten_kept(logits, target, self.ignore_index))

    def forward(self, logits: Tensor, target: Tensor) -> dict[str, Any]:
        return super().forward(*flatten_kept(logits, target, self.ignore_index))


def classification_metrics(num_classes: int, ignore_index: int = -100) -> ClassificationMetrics:
    """The comparison metrics (keys ``METRIC_NAMES``) for logits with ``num_classes`` classes.

    Use ``.clone(prefix="val_")`` for per-stage copies (keys ``val_acc``, ...)."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"classification_metrics needs an integer num_classes >= 2; got {num_classes!r}")
    # Members get ignore_index=None: the collection has already dropped those rows.
    return ClassificationMetrics(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MacroPrecision(num_classes),
            "nll": NegativeLogLikelihood(ignore_index=None),
            "ece": ExpectedCalibrationError(num_classes, n_bins=ECE_BINS),
            "complement_entropy": NormalizedComplementEntropy(ignore_index=None),
        },
        ignore_index=ignore_index,
    )


def classification_scores(
    logits: Tensor, target: Tensor, num_classes: int | None = None, ignore_index: int = -100
) -> dict[str, float]:
    """Functional twin of :func:`classification_metrics`: every metric on one set of logits.

    ``num_classes`` defaults to the logits' last dimension. For saved probabilities pass ``probs.log()``."""
    metrics = classification_metrics(num_classes or logits.shape[-1], ignore_index).to(logits.device)
    metrics.update(logits, target)
    return {name: float(value) for name, value in metrics.compute().items()}
