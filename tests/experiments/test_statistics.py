"""Paired statistics: intervals and p-values against scipy's own paired t-test, the verdicts,
the seeds a spread needs, and the pairing itself (same weights and data order per seed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from complement.experiments.report.statistics import paired_comparison, seeds_needed


def as_seeds(values):
    return dict(enumerate(values))


def test_interval_and_p_value_equal_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    base = rng.normal(0.9, 0.01, 6)
    method = base + rng.normal(0.004, 0.003, 6)
    found = paired_comparison("cot", "ce", "test_acc", as_seeds(method), as_seeds(base))
    reference = stats.ttest_rel(method, base)
    interval = reference.confidence_interval(0.95)
    assert found.p_value == pytest.approx(reference.pvalue)
    assert found.interval == pytest.approx((interval.low, interval.high))
    assert found.mean == pytest.approx(float(np.mean(method - base)))
    assert found.bootstrap is None  # fewer than 10 seeds


def test_bootstrap_from_ten_seeds_is_reproducible_and_near_the_t_interval():
    rng = np.random.default_rng(1)
    base = rng.normal(0.5, 0.02, 12)
    method = base - rng.normal(0.01, 0.004, 12)
    a = paired_comparison("cot", "ce", "test_nll", as_seeds(method), as_seeds(base))
    b = paired_comparison("cot", "ce", "test_nll", as_seeds(method), as_seeds(base))
    assert a.bootstrap == b.bootstrap and a.bootstrap[0] < a.mean < a.bootstrap[1]
    assert a.bootstrap == pytest.approx(a.interval, abs=0.002)
    assert a.verdict == "better"  # NLL went down: lower is better


@pytest.mark.parametrize(
    "metric,shift,verdict",
    [
        ("test_acc", 0.02, "better"),
        ("test_acc", -0.02, "worse"),
        ("test_ece", 0.02, "worse"),
        ("test_nll", -0.1, "better"),
    ],
)
def test_verdict_follows_the_metrics_direction(metric, shift, verdict):
    base = np.array([0.5, 0.52, 0.49, 0.51, 0.5])
    method = base + shift + np.array([0.001, -0.001, 0.002, 0.0, -0.002])
    assert paired_comparison("m", "ce", metric, as_seeds(method), as_seeds(base)).verdict == verdict


def test_not_separable_says_how_many_seeds_80_percent_power_needs():
    diffs = np.array([0.01, -0.006, 0.012, -0.004, 0.008])
    found = paired_comparison("cot", "ce_2x", "test_acc", as_seeds(diffs), as_seeds(np.zeros(5)))
    assert found.verdict == "not separable" and found.seeds_needed > 5
    mean, sd, n = diffs.mean(), diffs.std(ddof=1), found.seeds_needed
    # a Monte-Carlo paired t-test at n and n - 1 seeds, normal differences with that mean and spread
    rng = np.random.default_rng(0)

    def simulated_power(seeds):
        draws = rng.normal(mean, sd, (20_000, seeds))
        t = draws.mean(1) / (draws.std(1, ddof=1) / np.sqrt(seeds))
        return float(np.mean(np.abs(t) > stats.t.ppf(0.975, seeds - 1)))

    assert simulated_power(n) >= 0.79 and simulated_power(n - 1) < 0.81
    # the old rule (where the observed interval just excludes 0) is about 50% power: it asks for fewer seeds
    just = next(k for k in range(2, 1000) if stats.t.ppf(0.975, k - 1) * sd / np.sqrt(k) < abs(mean))
    assert just < n and 0.4 < simulated_power(just) < 0.6
    sentence = found.sentence()
    assert f"not separable with 5 seeds (80% power at the observed difference and spread, paired t at α 0.05, needs " \
           f"about {n} seeds)" in sentence  # fmt: skip
    assert seeds_needed(0.0, 0.1) is None


@pytest.mark.parametrize("effect, seeds", [(0.2, 199), (0.5, 34), (0.8, 15)])
def test_seeds_needed_matches_the_standard_power_tables(effect, seeds):
    # G*Power / Cohen (1988): paired (one-sample) t, two-sided α 0.05, power 0.8
    assert seeds_needed(effect, 1.0) == seeds


def test_only_paired_seeds_count_and_one_seed_gives_no_interval():
    found = paired_comparison("cot", "ce", "test_acc", {0: 0.9, 1: 0.91, 7: 0.5}, {0: 0.89, 1: 0.9})
    assert found.n == 2
    single = paired_comparison("cot", "ce", "test_acc", {0: 0.9}, {0: 0.8})
    assert single.interval is None and "single seed" in single.sentence()
    assert paired_comparison("cot", "ce", "test_acc", {1: 0.9}, {0: 0.8}) is None


@pytest.mark.slow
def test_runs_of_one_seed_share_initial_weights_and_first_epoch_order(blobs, tmp_path, monkeypatch):
    """The premise of pairing, through the runs layer: same seed, same start and data order, any method."""
    import torch

    from complement.experiments.cli import main
    from complement.experiments.runs import fit

    seen: dict[tuple[str, int], dict] = {}
    original = fit.TaskModule.on_fit_start

    def on_fit_start(self):
        key = (self.trainer.default_root_dir.split("/")[-1], 0)
        seen[key] = {"weights": [p.detach().clone() for p in self.parameters()], "order": []}
        self._seen = seen[key]
        original(self)

    original_step = fit.TaskModule.training_step

    def training_step(self, batch, batch_idx):
        if self.current_epoch == 0:
            self._seen["order"].append(batch[1].clone())
        return original_step(self, batch, batch_idx)

    monkeypatch.setattr(fit.TaskModule, "on_fit_start", on_fit_start)
    monkeypatch.setattr(fit.TaskModule, "training_step", training_step)
    main(["compare", "--task", "blobs", "--methods", "[ce, cot, ce_2x, gce]", "--seeds", "2", "--train.max_epochs", "1",
          "--out", str(tmp_path),
          "--progress", "false"])  # fmt: skip
    for seed in (0, 1):
        runs = [seen[(f"{m}-seed{seed}", 0)] for m in ("ce", "cot", "ce_2x", "gce")]
        for other in runs[1:]:
            assert all(torch.equal(a, b) for a, b in zip(runs[0]["weights"], other["weights"]))
            assert all(torch.equal(a, b) for a, b in zip(runs[0]["order"], other["order"]))
    first, second = seen[("ce-seed0", 0)], seen[("ce-seed1", 0)]
    assert not all(torch.equal(a, b) for a, b in zip(first["weights"], second["weights"]))
