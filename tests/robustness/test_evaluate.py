"""Robust accuracy and the gradient-masking checks: an honest model passes them, a model that
masks its gradients is caught, and our PGD agrees with the Adversarial Robustness Toolbox's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from complement.robustness import evaluate
from complement.robustness.evaluate import MASKING_EPS, masking_checks, robust_accuracy

torch.set_num_threads(1)


def pixel_data(n: int = 96, seed: int = 0):
    """Two easy classes of 6x6 images in [0, 1]: bright left half or bright right half, with noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.rand(n, 1, 6, 6, generator=g) * 0.3
    for k in range(3):
        x[y == k, :, :, 2 * k : 2 * k + 2] += 0.6
    return x.clamp(0, 1), y


def trained_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = pixel_data(256, seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


class Quantized(nn.Module):
    """Masks its gradients: the input is rounded to 4 levels, whose gradient is 0 almost everywhere."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 3) / 3)


def batches(x, y, size=32):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def test_an_honest_model_loses_accuracy_with_eps_and_passes_the_checks():
    model, (x, y) = trained_model(), pixel_data()
    results = robust_accuracy(model, batches(x, y), eps=[0.1, 0.3], attacks=["fgsm", "pgd", "pgd_dlr"], steps=10)
    found = {(r.attack, r.eps): r.accuracy for r in results}
    assert found[("clean", 0.0)] > 0.9 and all(r.total == 96 for r in results)
    assert found[("pgd", 0.3)] <= found[("pgd", 0.1)] <= found[("clean", 0.0)]
    assert found[("pgd", MASKING_EPS)] == 0.0
    for e in (0.1, 0.3):  # the worst case counts an example robust only if no attack broke it
        assert found[("worst", e)] <= min(found[(a, e)] for a in ("fgsm", "pgd", "pgd_dlr"))
    checks = {c.name: c for c in masking_checks(results)}
    assert checks["accuracy falls at eps=1"].passed
    assert checks["PGD at least as strong as FGSM (eps 0.3)"].passed
    # the margin loss finds more here: CE-only PGD would overstate robustness, which the check reports
    assert not checks["cross-entropy finds what the margin loss finds (eps 0.3)"].passed
    assert found[("pgd_dlr", 0.3)] < found[("pgd", 0.3)] - 0.05
    assert model.training, "the model's mode is put back"


def test_a_model_that_masks_its_gradients_is_caught():
    masked, (x, y) = Quantized(trained_model()), pixel_data()
    results = robust_accuracy(masked, batches(x, y), eps=[0.3], attacks=["fgsm", "pgd"], steps=10)
    found = {(r.attack, r.eps): r.accuracy for r in results}
    assert found[("pgd", MASKING_EPS)] > 0.5, "the gradient attack cannot move: 'robust' at any eps"
    (large,) = [c for c in masking_checks(results) if c.name == "accuracy falls at eps=1"]
    assert not large.passed and "PGD at eps 1" in large.detail


def test_the_black_box_square_sees_through_the_masking(monkeypatch):
    pytest.importorskip("art")
    monkeypatch.setattr(evaluate, "SQUARE_QUERIES", 200)
    masked, (x, y) = Quantized(trained_model()), pixel_data(32)
    results = robust_accuracy(masked, batches(x, y), eps=[0.5], attacks=["pgd", "square"], steps=10)
    found = {(r.attack, r.eps): r.accuracy for r in results}
    assert found[("pgd", 0.5)] > 0.9 and found[("square", 0.5)] < 0.2
    (square,) = [c for c in masking_checks(results) if "Square" in c.name]
    assert not square.passed


def test_our_pgd_agrees_with_the_adversarial_robustness_toolboxs():
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model, (x, y) = trained_model().eval(), pixel_data()
    classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 6, 6), nb_classes=3,
                                   clip_values=(0.0, 1.0), device_type="cpu")  # fmt: skip
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=0.2, eps_step=0.02, max_iter=10, num_random_init=0,
                                      batch_size=96, verbose=False)  # fmt: skip
    theirs = torch.from_numpy(attack.generate(x=x.numpy(), y=y.numpy()))
    ours = evaluate.pgd(model, x, y, 0.2, steps=10, step_size=0.02, random_start=False)
    with torch.no_grad():
        agree = (model(ours).argmax(1) == model(theirs).argmax(1)).float().mean()
    assert float(agree) >= 0.99  # the update order differs in float32 rounding only (same labels)
    assert float((ours - theirs).abs().max()) <= 0.2 + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attacks": ["pgd", "cw"]}, r"unknown attack\(s\) \['cw'\]"),
        ({"attacks": "pgd"}, "attacks must be a non-empty list"),
        ({"eps": []}, "eps is empty"),
        ({"eps": [1.5]}, r"eps must be in \[0, 1\]"),
        ({"steps": 0}, "steps must be an integer >= 1"),
    ],
)
def test_bad_evaluation_arguments_get_clear_errors(kwargs, message):
    x, y = pixel_data(8)
    arguments = {"eps": [0.1], "attacks": ["pgd"], **kwargs}
    with pytest.raises(ValueError, match=message):
        robust_accuracy(trained_model(), batches(x, y), **arguments)


def test_no_examples_is_an_error():
    with pytest.raises(ValueError, match="no examples to attack"):
        robust_accuracy(trained_model(), [], eps=[0.1])
