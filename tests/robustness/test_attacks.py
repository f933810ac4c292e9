"""FGSM and PGD against hand-written references (float64), their threat model, and their errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from complement.robustness import Normalized, fgsm, pgd
from complement.robustness.attacks import ATTACK_LOSSES


def model_and_data(seed: int = 0, n: int = 16, classes: int = 5):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, classes)
    )
    model = model.double()
    x = torch.rand(n, 1, 3, 4, dtype=torch.float64)
    y = torch.randint(0, classes, (n,))
    return model, x, y


def reference_pgd(model, x, y, eps, alpha, steps, start):
    """Madry et al.'s loop written out: backward into x.grad, step, clip to the ball, clip to [0, 1]."""
    adversarial = start.clone()
    for _ in range(steps):
        adversarial.requires_grad_(True)
        F.cross_entropy(model(adversarial), y, reduction="sum").backward()
        with torch.no_grad():
            adversarial = adversarial + alpha * adversarial.grad.sign()
            adversarial = torch.min(torch.max(adversarial, x - eps), x + eps).clamp(0, 1)
        model.zero_grad()
    return adversarial.detach()


def test_fgsm_on_a_linear_model_is_the_closed_form():
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 3).double()
    x, y = torch.rand(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    p = linear(x).softmax(1)
    gradient = (p - F.one_hot(y, 3).double()) @ linear.weight  # d CE / d x for logits W x + b
    assert torch.equal(fgsm(linear, x, y, 0.1), (x + 0.1 * gradient.sign()).clamp(0, 1))


def test_pgd_equals_the_hand_written_loop():
    model, x, y = model_and_data()
    start = x + 0.2 * (torch.rand(x.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype) * 2 - 1)
    start = torch.min(torch.max(start, (x - 0.2).clamp(min=0)), (x + 0.2).clamp(max=1))
    ours = pgd(model, x, y, 0.2, steps=7, step_size=0.05, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, reference_pgd(model, x, y, 0.2, 0.05, 7, start))
    no_start = pgd(model, x, y, 0.2, steps=7, step_size=0.05, random_start=False)
    assert torch.equal(no_start, reference_pgd(model, x, y, 0.2, 0.05, 7, x))


@pytest.mark.parametrize("loss", ["ce", "dlr", "margin"])
def test_pgd_stays_in_the_ball_and_the_pixels_and_raises_its_loss(loss):
    model, x, y = model_and_data(1)
    adversarial = pgd(model, x, y, 0.1, steps=10, loss=loss, generator=torch.Generator().manual_seed(0))
    assert float((adversarial - x).abs().max()) <= 0.1 + 1e-12
    assert float(adversarial.min()) >= 0 and float(adversarial.max()) <= 1
    before, after = (ATTACK_LOSSES[loss](model(z), y).sum() for z in (x, adversarial))
    assert after > before
    assert all(p.grad is None for p in model.parameters()), "only the input gets gradients"


def test_dlr_does_not_change_when_the_logits_are_scaled_or_shifted():
    logits, y = torch.randn(6, 5, dtype=torch.float64), torch.randint(0, 5, (6,))
    dlr = ATTACK_LOSSES["dlr"]
    assert torch.allclose(dlr(logits, y), dlr(3 * logits + 7, y))


def test_pgd_takes_an_attack_loss_callable():
    model, x, y = model_and_data(2)
    clean = model(x).softmax(1).detach()

    def kl_to_clean(logits, target):  # TRADES' inner loss
        return F.kl_div(logits.log_softmax(1), clean, reduction="none").sum(1)

    adversarial = pgd(model, x, y, 0.05, steps=3, loss=kl_to_clean, generator=torch.Generator().manual_seed(0))
    assert float(kl_to_clean(model(adversarial), y).sum().detach()) > 0


def test_normalized_attacks_pixels_and_the_model_sees_normalized_inputs():
    seen = []
    inner = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    inner.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model = Normalized(inner, mean=[0.5], std=[0.25])
    x = torch.rand(4, 1, 3, 4)
    model(x)
    assert torch.allclose(seen[0], (x - 0.5) / 0.25)
    assert torch.allclose(model.pixels((x - 0.5) / 0.25), x)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eps": -0.1}, ValueError, r"eps must be in \[0, 1\]"),
        ({"eps": 8}, ValueError, r"eps must be in \[0, 1\] .*8/255"),
        ({"eps": float("nan")}, ValueError, "eps must be a finite number"),
        ({"eps": "0.3"}, TypeError, "eps must be a number"),
        ({"eps": 0.1, "steps": 0}, ValueError, "steps must be an integer >= 1"),
        ({"eps": 0.1, "loss": "hinge"}, ValueError, "unknown attack loss 'hinge'"),
    ],
)
def test_bad_attack_arguments_get_clear_errors(kwargs, error, message):
    model, x, y = model_and_data()
    with pytest.raises(error, match=message):
        pgd(model, x, y, **kwargs)


def test_a_model_returning_a_tuple_or_normalized_inputs_get_clear_errors():
    model, x, y = model_and_data()
    with pytest.raises(
        TypeError, match=r"must return a tensor of logits \(N, C\); got tuple.*lambda x: model\(x\)\[0\]"
    ):
        fgsm(lambda z: (model(z), None), x, y, 0.1)
    with pytest.raises(ValueError, match=r"must be pixels in \[0, 1\].*Normalized\(model, mean, std\)"):
        fgsm(model, (x - 0.5) / 0.2, y, 0.1)
