"""The report's figures: the forest plot of the verdict, learning curves whose methods stay apart,
and reliability titles that say which ECE they show."""

from __future__ import annotations

import pytest
import torch

from complement.experiments.report import RunRecord
from complement.experiments.report import figures as fig
from complement.experiments.report.statistics import paired_comparisons
from complement.experiments.report.tables import by_method

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(method: str, seed: int, val_acc: list[float], acc: float, nll: float, ece: float) -> RunRecord:
    per_batch = 2 if method == "cot" else 1
    history = [{"epoch": e, "passes": 10 * per_batch * e, "val_acc": v} for e, v in enumerate(val_acc, 1)]
    return RunRecord(method, seed, history, {"test_acc": acc, "test_nll": nll, "test_ece": ece})


@pytest.fixture
def records() -> list[RunRecord]:
    runs = []
    for seed in range(3):
        shared = [0.5 + 0.01 * seed, 0.7, 0.8]  # ce_2x repeats ce's first epochs, as runs seeded alike do
        runs.append(run("ce", seed, shared, 0.80 + 0.01 * seed, 0.50, 0.05))
        runs.append(run("ce_2x", seed, shared + [0.85, 0.86, 0.87], 0.82 + 0.01 * seed, 0.45, 0.04))
        runs.append(run("cot", seed, [0.6, 0.8, 0.85], 0.83 + 0.012 * seed, 0.40 + 0.01 * seed, 0.03))
    return runs


def test_ce_and_ce_2x_curves_differ_in_line_style_and_marker(records):
    groups = by_method(records)
    figure = fig.learning_curves_figure(groups, target=0.8, styles=fig.method_styles(list(groups)))
    for ax in figure.axes:
        lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines() if "seed" in line.get_label()}
        assert set(lines) == {"ce", "ce_2x", "cot"}
        ce, ce_2x = lines["ce"], lines["ce_2x"]
        assert ce.get_linestyle() != ce_2x.get_linestyle() and ce.get_marker() != ce_2x.get_marker()
        assert ce.get_linewidth() > ce_2x.get_linewidth()  # drawn first and wider: visible under ce_2x
        assert ce.get_markersize() > ce_2x.get_markersize() and ce.get_markerfacecolor() == "none"
        assert len({line.get_linestyle() for line in lines.values()}) == 3
        assert len({line.get_marker() for line in lines.values()}) == 3
    styles = fig.method_styles(["ce", "ce_2x", "cot"])  # the same per method in every figure
    assert styles == fig.method_styles(["ce", "ce_2x", "cot"]) and styles["ce"]["color"] != styles["ce_2x"]["color"]


def test_the_forest_plot_has_a_row_per_pair_a_panel_per_metric_and_a_zero_line(records, tmp_path):
    comparisons = paired_comparisons(records)
    figure = fig.forest_figure(comparisons)
    assert [ax.get_title() for ax in figure.axes] == ["accuracy", "NLL", "ECE"]
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == ["cot − ce", "cot − ce_2x", "ce_2x − ce"]  # top to bottom
    assert "better →" in figure.axes[0].get_xlabel() and "← better" in figure.axes[1].get_xlabel()
    for ax, metric in zip(figure.axes, ("test_acc", "test_nll", "test_ece")):
        assert any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines()), "a vertical line at zero"
        mine = {(c.method, c.baseline): c for c in comparisons if c.metric == metric}
        scale = 1 if metric == "test_nll" else 100
        # one errorbar per pair: its marker at the mean difference (points for accuracy and ECE), its row
        markers = [line for line in ax.get_lines() if line.get_marker() not in ("None", "", None, "|")]
        positions = sorted((float(line.get_ydata()[0]), float(line.get_xdata()[0])) for line in markers)
        expected = sorted(
            (row, mine[pair].mean * scale)
            for row, pair in zip((2, 1, 0), (("cot", "ce"), ("cot", "ce_2x"), ("ce_2x", "ce")))
        )
        assert [row for row, _ in positions] == [row for row, _ in expected]
        assert [x for _, x in positions] == pytest.approx([x for _, x in expected])
    path = fig.plot_forest(comparisons, tmp_path / "figures" / "forest.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[-8:-4] == b"IEND"
    assert [p.name for p in path.parent.iterdir()] == ["forest.png"]  # written atomically: no temporary left
    with pytest.raises(ValueError, match="no paired comparisons"):
        fig.forest_figure([])


def test_reliability_titles_say_which_ece_they_show():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (60,), generator=g)
    summary = fig.summarize((torch.randn(60, 3, generator=g) * 2).softmax(1), target)
    pooled = fig.expected_calibration_error_from_bins(*fig.reliability_bins(summary))
    figure = fig.reliability_figure({"ce": summary, "cot": summary}, per_seed_ece={"ce": 0.1234})
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert titles[0] == f"ce\nECE of pooled seeds {pooled:.4f}\nmean of per-seed ECEs 0.1234"
    assert titles[1] == f"cot\nECE of pooled seeds {pooled:.4f}"  # no per-seed ECE given: only the pooled one
    assert "the tables give the mean of per-seed ECEs" in figure.get_suptitle()
