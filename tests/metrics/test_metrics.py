"""complement.metrics against independent references (sklearn, numpy, an explicit softmax formula)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from sklearn.metrics import accuracy_score, log_loss, precision_score

from complement.metrics import (
    METRIC_NAMES,
    ExpectedCalibrationError,
    NegativeLogLikelihood,
    NormalizedComplementEntropy,
    classification_metrics,
    classification_scores,
    expected_calibration_error,
    negative_log_likelihood,
    normalized_complement_entropy,
)

C = 7


def make(n=300, c=C, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (n,), generator=g)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    logits[torch.arange(n), target] += 1.5  # better than chance, so the metrics are not degenerate
    return logits, target


def numpy_ece(probs: np.ndarray, target: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: bins [i/n, (i+1)/n), |accuracy - confidence| weighted by the bin's share."""
    confidence = probs.max(1)
    correct = (probs.argmax(1) == target).astype(float)
    index = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = index == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return ece


def explicit_complement_entropy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over rows of H(q) / log(K - 1), with q = p / (1 - p_g) over the wrong classes."""
    p = logits.double().softmax(1)
    wrong = torch.ones_like(p, dtype=torch.bool)
    wrong[torch.arange(len(target)), target] = False
    q = torch.where(wrong, p, 0.0) / (1 - p.gather(1, target[:, None]))
    h = -torch.where(wrong, q * q.log(), 0.0).sum(1)
    return float(h.mean() / math.log(p.shape[1] - 1))


def references(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    probs = logits.double().softmax(1).numpy()
    y, pred = target.numpy(), probs.argmax(1)
    return {
        "acc": accuracy_score(y, pred),
        "precision": precision_score(y, pred, average="macro", zero_division=0),
        "nll": log_loss(y, probs, labels=list(range(logits.shape[1]))),
        "ece": numpy_ece(probs, y),
        "complement_entropy": explicit_complement_entropy(logits, target),
    }


def assert_matches(values: dict, expected: dict, tol=2e-5):
    assert set(values) == set(expected)
    for name, value in expected.items():
        assert float(values[name]) == pytest.approx(value, abs=tol), name


def test_collection_matches_independent_references():
    logits, target = make()
    metrics = classification_metrics(C)
    for chunk in range(3):  # several updates accumulate like one
        rows = slice(chunk * 100, (chunk + 1) * 100)
        metrics.update(logits[rows], target[rows])
    values = metrics.compute()
    assert set(values) == set(METRIC_NAMES)
    assert_matches(values, references(logits, target))


def test_macro_precision_with_a_class_never_predicted_and_one_absent():
    logits, target = make(n=120, seed=1)
    logits[:, 2] = -30.0  # class 2 is never predicted: its precision is 0 (zero_division=0)
    keep = target != 5  # class 5 neither occurs nor (almost surely) is predicted
    logits, target = logits[keep], target[keep]
    logits[:, 5] = -30.0
    assert_matches(classification_scores(logits, target, C), references(logits, target))


def test_metrics_scale_to_vocabulary_sized_class_counts_under_deterministic_algorithms():
    # torchmetrics' MulticlassPrecision would allocate N * C**2 counters here (over a terabyte); ours is O(N + C)
    g = torch.Generator().manual_seed(5)
    num_classes = 50_000
    target = torch.randint(0, 40, (64,), generator=g)
    logits = torch.randn(64, num_classes, generator=g)
    logits[torch.arange(64), target] += 5.0 * (torch.arange(64) % 2)  # half the rows right
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        values = classification_scores(logits, target)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    pred = logits.argmax(1).numpy()
    assert values["precision"] == pytest.approx(precision_score(target.numpy(), pred, average="macro", zero_division=0))
    assert values["acc"] == pytest.approx(accuracy_score(target.numpy(), pred))


def test_ignore_index_rows_are_dropped():
    logits, target = make(n=200, seed=2)
    padded = target.clone()
    padded[::3] = -100
    kept = padded != -100
    values = classification_scores(logits, padded, C)
    assert values == classification_scores(logits[kept], target[kept], C)
    assert_matches(values, references(logits[kept], target[kept]))
    # An ignore_index that is a valid class index: that class's rows go.
    custom = classification_metrics(C, ignore_index=3)
    custom.update(logits, target)
    kept3 = target != 3
    assert_matches(custom.compute(), references(logits[kept3], target[kept3]))


def test_class_last_sequence_input():
    logits, target = make(n=8 * 12, seed=3)
    target[::7] = -100
    values = classification_scores(logits.reshape(8, 12, C), target.reshape(8, 12), C)
    assert values == classification_scores(logits, target, C)
    kept = target != -100
    assert_matches(values, references(logits[kept], target[kept]))


def test_functional_twins_equal_the_metrics():
    logits, target = make(n=150, seed=4)
    target[:10] = -100
    for functional, metric in [
        (negative_log_likelihood(logits, target), NegativeLogLikelihood()),
        (normalized_complement_entropy(logits, target), NormalizedComplementEntropy()),
        (expected_calibration_error(logits, target, C), ExpectedCalibrationError(C, ignore_index=-100)),
    ]:
        metric.update(logits, target)
        torch.testing.assert_close(functional.float(), metric.compute().float())


def test_ece_softmaxes_logits_that_look_like_probabilities():
    # All logits in [0, 1]: torchmetrics alone would take them for probabilities.
    logits = torch.rand(64, 4, generator=torch.Generator().manual_seed(5))
    target = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(6))
    expected = numpy_ece(logits.double().softmax(1).numpy(), target.numpy())
    assert float(expected_calibration_error(logits, target, 4)) == pytest.approx(expected, abs=1e-6)


def test_complement_entropy_bounds_and_two_classes():
    flat = torch.zeros(5, 6)
    flat[:, 0] = 3.0
    assert float(normalized_complement_entropy(flat, torch.zeros(5, dtype=torch.long))) == pytest.approx(1.0)
    two = torch.randn(10, 2)
    assert float(normalized_complement_entropy(two, torch.randint(0, 2, (10,)))) == 0.0


def test_clone_prefix_reset_and_half_precision():
    logits, target = make(n=64, seed=7)
    val = classification_metrics(C).clone(prefix="val_")
    val.update(logits.half(), target)
    first = val.compute()
    assert set(first) == {f"val_{name}" for name in METRIC_NAMES}
    val.reset()
    val.update(logits[:32].float(), target[:32])
    assert float(val.compute()["val_acc"]) == pytest.approx(references(logits[:32], target[:32])["acc"])


def test_bad_input_is_refused():
    logits, target = make(n=10)
    with pytest.raises(ValueError, match="outside"):
        classification_metrics(C).update(logits, torch.full((10,), C))
    with pytest.raises(ValueError, match="do not fit"):
        classification_metrics(C).update(logits, target[:5])
    with pytest.raises(TypeError, match="integer class indices"):
        negative_log_likelihood(logits, target.float())
    with pytest.raises(ValueError, match="num_classes"):
        classification_metrics(1)


def test_logged_from_a_lightning_module():
    lightning = pytest.importorskip("lightning.pytorch")
    logits, target = make(n=40, seed=8)

    class Probe(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.val_metrics = classification_metrics(C).clone(prefix="val_")

        def validation_step(self, batch, batch_idx):
            self.val_metrics.update(*batch)
            self.log_dict(self.val_metrics, on_epoch=True)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(logits.float(), target), batch_size=16)
    trainer = lightning.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (logged,) = trainer.validate(Probe(), loader, verbose=False)
    assert_matches({k[4:]: v for k, v in logged.items()}, references(logits, target))


def _ddp_worker(rank: int, world: int, port: int, logits, target, out_dir: str):
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        metrics = classification_metrics(C)
        metrics.update(logits[rank::world], target[rank::world])  # each process sees half the rows
        values = {name: float(value) for name, value in metrics.compute().items()}
        torch.save(values, f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logits, target = make(n=101, seed=9)
    target[::5] = -100
    mp.spawn(_ddp_worker, args=(2, port, logits, target, str(tmp_path)), nprocs=2, join=True)
    single = classification_scores(logits, target, C)
    for rank in range(2):
        assert torch.load(tmp_path / f"rank{rank}.pt") == pytest.approx(single, abs=1e-6)
