"""Figures of a comparison, as PNG files (matplotlib's Agg canvas, no pyplot state).

- :func:`plot_non_target_probabilities`: the COT blog's picture, "output probabilities
  for models trained with and without COT": the distribution of the probabilities the
  models give the wrong classes on the test set (left), and the mean of each example's
  sorted wrong-class probabilities by rank (right), one line per method.
- :func:`plot_forest`: the paired differences of the verdict, mean with its 95% interval,
  one row per (method, baseline), one panel per headline metric, a line at zero: the
  figure that answers "does COT help?".
- :func:`plot_reliability`: a reliability diagram per method (accuracy per confidence
  bin against the diagonal; the gap to the bin's mean confidence shaded). The title gives
  the ECE of the pooled predictions, which the diagram shows, and the mean of the
  per-seed ECEs, which the tables show; the two differ.
- :func:`plot_learning_curves`: ``val_acc`` against epochs and against training passes,
  the mean over seeds with a ±1 std band, one line per method.

Each method has its own colour, line style and (hollow) marker in every figure
(:func:`method_styles`), so that curves on top of each other stay visible. Predictions
of all seeds of a method are pooled. ``plot_*`` write a PNG atomically and return its
path; ``*_figure`` build the matplotlib figure they write.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from ..._atomic import atomic_path
from ...metrics import ECE_BINS
from .statistics import BETTER, HEADLINE_METRICS, WORSE, PairedComparison, metric_info
from .tables import mean_curve

DPI = 120
PROB_FLOOR = 1e-8  # probabilities below this land in the histogram's first bin


LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def method_styles(methods: list[str]) -> dict[str, dict[str, str]]:
    """A fixed colour, line style and marker per method, the same in every figure.

    Line styles and markers differ too, so that identical curves (``ce`` and ``ce_2x`` share
    their first epochs when seeded alike) stay visible on top of each other."""
    return {
        method: {"color": f"C{i % 10}", "ls": LINE_STYLES[i % len(LINE_STYLES)], "marker": MARKERS[i % len(MARKERS)]}
        for i, method in enumerate(methods)
    }


def _stroke(style: dict[str, str]) -> dict[str, str]:
    """Colour and line style only, for artists without markers."""
    return {"color": style["color"], "ls": style["ls"]}


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)  # attach the Agg canvas: PNG output without touching pyplot's backend
    with atomic_path(path) as temporary:  # a killed report leaves no half-written figure
        fig.savefig(temporary, dpi=DPI, bbox_inches="tight", format="png")
    return path


def non_target(probs: Tensor, target: Tensor) -> Tensor:
    """The ``(M, C - 1)`` probabilities of the wrong classes, in class order."""
    keep = torch.ones_like(probs, dtype=torch.bool)
    keep[torch.arange(probs.shape[0]), target] = False
    return probs[keep].reshape(probs.shape[0], probs.shape[1] - 1)


HISTOGRAM_EDGES = torch.logspace(math.log10(PROB_FLOOR), 0, 41, dtype=torch.float64)
SUMMARY_CHUNK_ELEMENTS = 1 << 23  # rows are summarized in chunks of about 64 MB of float64


@dataclass
class ProbabilitySummary:
    """What the prediction figures need from test probabilities, in O(rows + classes) memory.

    A language model's test set holds tens of thousands of rows over thousands of classes;
    pooling several seeds' ``(M, C)`` probabilities ran a 23 GB machine out of memory.
    Summaries of runs merge exactly (counts and sums), so seeds are pooled one at a time."""

    histogram: Tensor  # counts of wrong-class probabilities over HISTOGRAM_EDGES
    rank_sums: Tensor  # per rank, the sum over rows of the sorted wrong-class probabilities
    confidence: Tensor  # (M,) max probability
    correct: Tensor  # (M,) whether the argmax is the target

    @property
    def rows(self) -> int:
        return self.confidence.numel()

    def merge(self, other: ProbabilitySummary) -> ProbabilitySummary:
        if other.rank_sums.shape != self.rank_sums.shape:
            raise ValueError(
                f"cannot pool predictions over {self.rank_sums.numel() + 1} and {other.rank_sums.numel() + 1} classes"
            )
        return ProbabilitySummary(
            self.histogram + other.histogram,
            self.rank_sums + other.rank_sums,
            torch.cat([self.confidence, other.confidence]),
            torch.cat([self.correct, other.correct]),
        )


def summarize(probs: Tensor, target: Tensor) -> ProbabilitySummary:
    """Summarize ``probs (M, C)`` against ``target (M,)`` chunk by chunk."""
    num_classes = probs.shape[1]
    histogram = torch.zeros(len(HISTOGRAM_EDGES) - 1, dtype=torch.float64)
    rank_sums = torch.zeros(num_classes - 1, dtype=torch.float64)
    step = max(1, SUMMARY_CHUNK_ELEMENTS // max(num_classes, 1))
    for start in range(0, probs.shape[0], step):
        wrong = non_target(probs[start : start + step].double(), target[start : start + step])
        histogram += torch.histogram(wrong.flatten().clamp(PROB_FLOOR, 1.0), bins=HISTOGRAM_EDGES).hist
        rank_sums += wrong.sort(dim=1, descending=True).values.sum(0)
    confidence, predicted = probs.max(dim=1)
    return ProbabilitySummary(histogram, rank_sums, confidence.double(), predicted == target)


def plot_non_target_probabilities(
    predictions: dict[str, ProbabilitySummary], path: str | os.PathLike, styles: dict[str, dict[str, str]] | None = None
) -> Path:
    """``predictions``: ``{method: ProbabilitySummary}`` (see :func:`summarize`), seeds already pooled."""
    styles = styles or method_styles(list(predictions))
    fig = Figure(figsize=(11, 4.2))
    hist_ax, rank_ax = fig.subplots(1, 2)
    edges = HISTOGRAM_EDGES
    for method, summary in predictions.items():
        share = (summary.histogram / max(float(summary.histogram.sum()), 1.0)).numpy()
        hist_ax.stairs(
            np.where(share > 0, share, np.nan), edges.numpy(), lw=1.8, label=method, **_stroke(styles[method])
        )
        # Each example's wrong-class probabilities, largest first, averaged rank by rank.
        ranked = (summary.rank_sums / max(summary.rows, 1)).numpy()
        rank_ax.plot(np.arange(1, ranked.size + 1), ranked, ms=4, mfc="none", label=method, **styles[method])
    hist_ax.set(
        xscale="log",
        yscale="log",
        xlabel="probability given to a wrong class",
        ylabel="share of (example, wrong class) pairs",
        title="Wrong-class probabilities (test set)",
    )
    rank_ax.set(
        yscale="log",
        xlabel="rank among the wrong classes (1 = most probable)",
        ylabel="mean probability",
        title="Sorted wrong-class probabilities",
    )
    rank_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (hist_ax, rank_ax):
        ax.grid(alpha=0.3, which="major")
        ax.legend()
    fig.suptitle("Output probabilities for models trained with and without COT")
    return _save(fig, path)


def reliability_bins(summary: ProbabilitySummary, n_bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: ``(count, accuracy, mean confidence)`` (NaN for empty bins).

    Bins are ``[i/n, (i+1)/n)`` as in torchmetrics; a confidence of exactly 1 joins the last bin."""
    confidence, correct = summary.confidence, summary.correct.double()
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=confidence.dtype)
    index = (torch.bucketize(confidence, boundaries, right=True) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = (torch.bincount(index, weights=correct, minlength=n_bins) / count).numpy()
        mean_conf = (torch.bincount(index, weights=confidence, minlength=n_bins) / count).numpy()
    return count.numpy(), accuracy, mean_conf


def expected_calibration_error_from_bins(count: np.ndarray, accuracy: np.ndarray, mean_conf: np.ndarray) -> float:
    """Top-label l1 ECE: the count-weighted mean gap between confidence and accuracy per bin."""
    filled = count > 0
    return float((count[filled] * np.abs(mean_conf[filled] - accuracy[filled])).sum() / max(count.sum(), 1.0))


def reliability_figure(
    predictions: dict[str, ProbabilitySummary],
    n_bins: int = ECE_BINS,
    styles: dict[str, dict[str, str]] | None = None,
    per_seed_ece: dict[str, float] | None = None,
) -> Figure:
    """One reliability diagram per method, side by side (4 per row).

    ``per_seed_ece``: per method, the mean over seeds of each run's ECE (the tables' number),
    shown in the title beside the ECE of the pooled predictions (the diagram's)."""
    styles = styles or method_styles(list(predictions))
    columns = min(len(predictions), 4)
    rows = math.ceil(len(predictions) / columns)
    height = 4.4 * rows
    fig = Figure(figsize=(3.6 * columns, height))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    width = 1.0 / n_bins
    centers = (np.arange(n_bins) + 0.5) * width
    for ax, (method, summary) in zip(axes, predictions.items()):
        count, accuracy, mean_conf = reliability_bins(summary, n_bins)
        ece = expected_calibration_error_from_bins(count, accuracy, mean_conf)
        filled = count > 0
        ax.bar(
            centers[filled],
            accuracy[filled],
            width=width,
            color=styles[method]["color"],
            edgecolor="black",
            lw=0.5,
            label="accuracy per bin",
        )
        # The miscalibration of each bin: from its accuracy up (or down) to its mean confidence.
        ax.bar(
            centers[filled],
            (mean_conf - accuracy)[filled],
            bottom=accuracy[filled],
            width=width,
            fill=False,
            hatch="///",
            edgecolor="tab:red",
            lw=0.8,
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], ls="--", color="black", lw=1, label="perfect calibration")
        title = f"{method}\nECE of pooled seeds {ece:.4f}"
        if per_seed_ece is not None and method in per_seed_ece:
            title += f"\nmean of per-seed ECEs {per_seed_ece[method]:.4f}"
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max probability)")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
    for ax in axes[len(predictions) :]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("accuracy")
    handles, labels = axes[0].get_legend_handles_labels()  # the first method's colour stands for all
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(
        f"Reliability on the test set ({n_bins} bins, predictions of all seeds pooled; "
        "the tables give the mean of per-seed ECEs)",
        fontsize=10,
    )
    fig.subplots_adjust(bottom=0.8 / height, top=1 - 0.9 / height, hspace=0.45)  # room for 3-line titles
    return fig


def plot_reliability(
    predictions: dict[str, ProbabilitySummary],
    path: str | os.PathLike,
    n_bins: int = ECE_BINS,
    styles: dict[str, dict[str, str]] | None = None,
    per_seed_ece: dict[str, float] | None = None,
) -> Path:
    """Write :func:`reliability_figure` to ``path``."""
    return _save(reliability_figure(predictions, n_bins, styles, per_seed_ece), path)


def learning_curves_figure(
    curves: dict[str, list], target: float | None = None, styles: dict[str, dict[str, str]] | None = None
) -> Figure:
    """``curves``: ``{method: [RunRecord, ...]}``; ``target``: a val_acc level drawn as a dashed line."""
    styles = styles or method_styles(list(curves))
    fig = Figure(figsize=(11, 4.2))
    epoch_ax, passes_ax = fig.subplots(1, 2)
    for order, (method, records) in enumerate(curves.items()):
        curve = mean_curve(records, "val_acc")
        epochs = np.array(list(curve), dtype=float)
        mean = np.array([m for m, _, _ in curve.values()])
        std = np.array([s if s is not None else 0.0 for _, s, _ in curve.values()])
        passes = np.array([p for _, _, p in curve.values()])
        label = f"{method} ({len(records)} seed{'s' if len(records) != 1 else ''})"
        for ax, x in ((epoch_ax, epochs), (passes_ax, passes)):
            # Methods drawn first are drawn wider: a later one on top of them leaves them visible.
            width, size = max(1.2, 2.8 - 0.5 * order), max(4.0, 8.0 - 1.5 * order)
            ax.plot(x, mean, ms=size, mfc="none", lw=width, label=label, **styles[method])
            ax.fill_between(x, mean - std, mean + std, color=styles[method]["color"], alpha=0.15, lw=0)
    for ax, xlabel in ((epoch_ax, "epoch"), (passes_ax, "training passes (forward+backward over batches)")):
        if target is not None:
            ax.axhline(target, ls=(0, (1, 3)), color="gray", lw=1, label=f"target {target:.4f}")
        ax.set(xlabel=xlabel, ylabel="validation accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    epoch_ax.set_title("val_acc by epoch (mean ± std over seeds)")
    passes_ax.set_title("val_acc by compute (mean ± std over seeds)")
    return fig


def plot_learning_curves(
    curves: dict[str, list],
    path: str | os.PathLike,
    target: float | None = None,
    styles: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write :func:`learning_curves_figure` to ``path``."""
    return _save(learning_curves_figure(curves, target, styles), path)


def forest_figure(
    comparisons: list[PairedComparison],
    metrics: tuple[str, ...] = HEADLINE_METRICS,
    styles: dict[str, dict[str, str]] | None = None,
) -> Figure:
    """The paired differences (method − baseline): per row a (method, baseline) pair, per panel a metric,
    the mean over seeds with its 95% t-interval (filled marker: the interval excludes 0), a line at 0."""
    shown = [m for m in metrics if any(c.metric == m for c in comparisons)]
    if not shown:
        raise ValueError("no paired comparisons of the headline metrics to plot")
    pairs = list(dict.fromkeys((c.method, c.baseline) for c in comparisons if c.metric in shown))
    styles = styles or method_styles(list(dict.fromkeys(method for method, _ in pairs)))
    found = {(c.method, c.baseline, c.metric): c for c in comparisons}
    fig = Figure(figsize=(3.4 * len(shown) + 1.4, 0.42 * len(pairs) + 1.9))
    axes = np.atleast_1d(fig.subplots(1, len(shown), sharey=True, squeeze=False)).ravel()
    rows = np.arange(len(pairs))[::-1]  # the first pair on top
    for ax, metric in zip(axes, shown):
        info = metric_info(metric)
        scale = 100.0 if info.points else 1.0
        ax.axvline(0.0, color="black", lw=1, zorder=1)
        for row, (method, baseline) in zip(rows, pairs):
            c = found.get((method, baseline, metric))
            if c is None:
                continue
            style = styles.get(method, {"color": "black", "marker": "o"})
            face = style["color"] if c.verdict in (BETTER, WORSE) else "white"
            low, high = c.interval if c.interval is not None else (c.mean, c.mean)
            error = [[(c.mean - low) * scale], [(high - c.mean) * scale]]
            ax.errorbar(
                c.mean * scale,
                row,
                xerr=error,
                fmt=style["marker"],
                color=style["color"],
                mfc=face,
                ms=7,
                capsize=3,
                lw=1.5,
                zorder=2,
            )
        unit = " (pts)" if info.points else ""
        direction = "better →" if info.higher_is_better else "← better"
        ax.set_title(info.label)
        ax.set_xlabel(f"Δ {info.label}{unit}   {direction}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(rows, [f"{method} − {baseline}" for method, baseline in pairs])
    axes[0].set_ylim(-0.7, len(pairs) - 0.3)
    fig.suptitle("Paired differences over seeds: mean and 95% interval (filled: the interval excludes 0)", fontsize=10)
    return fig


def plot_forest(
    comparisons: list[PairedComparison],
    path: str | os.PathLike,
    metrics: tuple[str, ...] = HEADLINE_METRICS,
    styles: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write :func:`forest_figure` to ``path``."""
    return _save(forest_figure(comparisons, metrics, styles), path)
