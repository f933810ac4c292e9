"""The comp-sum loss family (Mao, Mohri and Zhong, ICML 2023) against plain-torch references."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import complement
from complement.losses import comp_sum as comp_sum_module

TAUS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "losses.md"


def _inputs(n=9, k=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, k, generator=g, dtype=dtype) * 2).requires_grad_()
    target = torch.randint(0, k, (n,), generator=g)
    return logits, target


def _grad(value, logits):
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return grad


def _target_probability(logits, target):
    return logits.softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)


# Each closed form from the logits, not through the loss's log space.
CLOSED_FORMS = {
    0.0: lambda z, t: (z - z.gather(1, t.unsqueeze(1))).exp().sum(1) - 1,  # sum_{j != g} exp(z_j - z_g)
    0.5: lambda z, t: (_target_probability(z, t) ** -0.5 - 1) / 0.5,
    1.5: lambda z, t: (1 - _target_probability(z, t) ** 0.5) / 0.5,  # GCE, q = 0.5
    2.0: lambda z, t: 1 - _target_probability(z, t),  # MAE / 2
    3.0: lambda z, t: (1 - _target_probability(z, t) ** 2) / 2,
}


def _reference(tau, logits, target, weight=None, ignore_index=-100, reduction="mean"):
    """F.cross_entropy at tau = 1; else the closed form's rows with F.cross_entropy's weighting and ignoring."""
    if tau == 1.0:
        return F.cross_entropy(logits, target, weight, ignore_index=ignore_index, reduction=reduction)
    kept = target != ignore_index
    safe = torch.where(kept, target, torch.zeros_like(target))
    w = kept.to(logits.dtype) * (weight[safe] if weight is not None else 1.0)
    rows = torch.where(kept, CLOSED_FORMS[tau](logits, safe) * w, torch.zeros_like(w))
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / w.sum()


# --- value and gradient ---------------------------------------------------------------------


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_forms(tau, reduction, weighted):
    logits, target = _inputs()
    target[2] = -100
    weight = torch.rand(5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1 if weighted else None
    ours = complement.comp_sum_loss(logits, target, weight, tau=tau, reduction=reduction)
    ref = _reference(tau, logits, target, weight, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(_grad(ours, logits), _grad(ref, logits))
    module = complement.get_loss("comp_sum", tau=tau, weight=weight, reduction=reduction)
    torch.testing.assert_close(module(logits, target), ours)


@pytest.mark.parametrize("tau", [*TAUS, 1 - 1e-8, 1 + 1e-8])
def test_gradcheck_float64(tau):
    logits, target = _inputs(6, 4)
    target[1] = 7  # ignored
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: complement.comp_sum_loss(z, target, weight, tau=tau, ignore_index=7), (logits,)
    )
    spatial = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    spatial_target = torch.randint(0, 3, (2, 2, 2))
    assert torch.autograd.gradcheck(
        lambda z: complement.comp_sum_loss(z, spatial_target, tau=tau, reduction="none"), (spatial,)
    )


@pytest.mark.parametrize("tau", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_spatial_input_with_ignore_index_equals_its_rows(tau, reduction):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    target[0, 1, 2] = target[1, 0, 0] = -1
    ours = complement.comp_sum_loss(logits, target, tau=tau, ignore_index=-1, reduction=reduction)
    rows = complement.comp_sum_loss(
        logits.movedim(1, -1).reshape(-1, 4), target.reshape(-1), tau=tau, ignore_index=-1, reduction=reduction
    )
    assert ours.shape == ((2, 3, 5) if reduction == "none" else ())
    torch.testing.assert_close(ours, rows.reshape(ours.shape))
    if tau == 1.0:
        torch.testing.assert_close(ours, F.cross_entropy(logits, target, ignore_index=-1, reduction=reduction))


def test_unbatched_input_and_all_ignored():
    z, t = torch.tensor([2.0, 1.0, 1.0, 1.0]), torch.tensor(0)
    torch.testing.assert_close(complement.comp_sum_loss(z, t, tau=0.0), torch.tensor(3 * math.exp(-1)))
    logits = torch.randn(3, 4, requires_grad=True)
    empty = complement.comp_sum_loss(logits, torch.full((3,), -100), tau=0.0)
    assert empty.item() == 0.0 and torch.equal(_grad(empty, logits), torch.zeros(3, 4))


def test_generalized_cross_entropy_and_mae_are_comp_sum_losses():
    logits, target = _inputs()
    target[4] = -100
    weight = torch.rand(5, generator=torch.Generator().manual_seed(2), dtype=torch.float64) + 0.1
    for reduction in ("mean", "sum", "none"):
        for q in (0.3, 0.7, 1.0):
            gen_ce = complement.get_loss("gen_ce", q=q, weight=weight, reduction=reduction)(logits, target)
            ours = complement.comp_sum_loss(logits, target, weight, tau=1 + q, reduction=reduction)
            torch.testing.assert_close(gen_ce, ours)
            torch.testing.assert_close(_grad(gen_ce, logits), _grad(ours, logits))
        mae = complement.get_loss("mae", weight=weight, reduction=reduction)(logits, target)
        half = complement.comp_sum_loss(logits, target, weight, tau=2.0, reduction=reduction)
        torch.testing.assert_close(mae, 2 * half)  # MAE is the l1 distance 2 (1 - p_g); comp-sum's tau = 2 is 1 - p_g
        torch.testing.assert_close(_grad(mae, logits), 2 * _grad(half, logits))


def test_loss_decreases_in_tau():
    logits, target = _inputs(20, 6)
    rows = torch.stack([complement.comp_sum_loss(logits, target, tau=t, reduction="none") for t in TAUS])
    assert (rows[:-1] > rows[1:]).all()
    assert (rows[-1] <= 1 / (3.0 - 1)).all()  # bounded by 1 / (tau - 1) for tau > 1


# --- precision near tau = 1, overflow below it ------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [1 - 1e-8, 1 + 1e-8, 1 - 1e-12, 1 + 1e-300])
def test_continuous_into_cross_entropy_near_tau_1(dtype, tau):
    logits, target = _inputs(12, 7, dtype=dtype)
    ours = complement.comp_sum_loss(logits, target, tau=tau, reduction="none")
    log_u = F.cross_entropy(logits, target, reduction="none").double()  # -log p_g in the logits' dtype
    a = 1 - tau
    series = log_u * (1 + a * log_u / 2 + (a * log_u) ** 2 / 6)  # expm1(a L) / a, to O(a^3)
    torch.testing.assert_close(ours.double(), series, rtol=1e-15 if dtype == torch.float64 else 1e-6, atol=0)
    # The naive form (u^(1 - tau) - 1) / (1 - tau) loses digits here: half of them at |1 - tau| = 1e-8.
    naive = ((a * log_u).exp() - 1) / a
    if dtype == torch.float64 and abs(a) > 1e-100:
        assert (naive - series).abs().max() > 1e-10 * series.abs().max()


@pytest.mark.parametrize("module", [False, True])
def test_overflow_below_tau_1_is_inf_with_zero_gradient_not_nan(module):
    """float32, tau = 0: a row whose target logit is 200 below another overflows (exp(200) > 3.4e38)."""
    logits = torch.tensor([[0.0, 200.0, 0.0], [1.0, 2.0, 3.0], [0.5, -0.5, 0.0]], requires_grad=True)
    target = torch.tensor([0, 2, 1])

    def loss(tau, reduction):
        if module:
            return complement.CompSumLoss(tau, reduction=reduction)(logits, target)
        return complement.comp_sum_loss(logits, target, tau=tau, reduction=reduction)

    for tau in (0.0, 0.5):
        rows = loss(tau, "none")
        assert rows[0].item() == math.inf and torch.isfinite(rows[1:]).all()
        reference = _reference(tau, logits[1:].double(), target[1:], reduction="none")
        torch.testing.assert_close(rows[1:].double(), reference, rtol=1e-5, atol=1e-6)
        grad = _grad(rows, logits)
        assert not grad.isnan().any() and torch.equal(grad[0], torch.zeros(3))
        good = complement.comp_sum_loss(logits[1:], target[1:], tau=tau, reduction="sum")
        torch.testing.assert_close(grad[1:], _grad(good, logits)[1:])
        mean = loss(tau, "mean")
        assert mean.item() == math.inf  # the row's true value, e^200, is beyond float32
        torch.testing.assert_close(_grad(mean, logits), grad / 3)
    # tau = 0.5 overflows later, at log u > 2 * 88.7: a gap of 150 is finite, exactly 2 (e^75 - 1)
    near = complement.comp_sum_loss(torch.tensor([[0.0, 150.0]]), torch.tensor([0]), tau=0.5)
    torch.testing.assert_close(near, torch.tensor(2 * math.expm1(75.0)))
    # tau >= 1 never overflows, and float64 holds e^200
    for tau, value in ((1.0, 200.0), (1.5, 2.0), (2.0, 1.0)):
        torch.testing.assert_close(loss(tau, "none")[0], torch.tensor(value))
        assert torch.isfinite(_grad(loss(tau, "mean"), logits)).all()
    wide = complement.comp_sum_loss(logits.double(), target, tau=0.0, reduction="none")
    torch.testing.assert_close(wide[0], torch.tensor(math.exp(200.0) + 1, dtype=torch.float64))


def test_a_nan_logit_stays_nan_and_a_minus_inf_target_logit_is_the_limit():
    logits, target = torch.randn(3, 4), torch.tensor([0, 1, 2])
    logits[1, 1] = math.nan
    for tau in (0.0, 1.0, 2.0):
        rows = complement.comp_sum_loss(logits, target, tau=tau, reduction="none")
        assert torch.isnan(rows[1]) and torch.isfinite(rows[[0, 2]]).all()
    logits[1, 1] = -math.inf  # p_g = 0: u = inf
    for tau, value in ((0.0, math.inf), (1.0, math.inf), (1.5, 2.0), (3.0, 0.5)):
        assert complement.comp_sum_loss(logits, target, tau=tau, reduction="none")[1].item() == value


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(dtype):
    logits, target = _inputs(8, 5, dtype=torch.float32)
    half = logits.detach().to(dtype)
    ours = complement.comp_sum_loss(half, target, tau=0.5)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, complement.comp_sum_loss(half.float(), target, tau=0.5))


# --- arguments, registry, docs ----------------------------------------------------------------

BAD_TAUS = [
    (-1, ValueError, r"tau must be >= 0 \(the comp-sum exponent.*got -1"),
    (-1e-9, ValueError, "tau must be >= 0"),
    (math.nan, ValueError, "tau must be a finite number; got nan"),
    (math.inf, ValueError, "tau must be a finite number; got inf"),
    (True, TypeError, "tau must be a number; got bool True"),
    ("0.5", TypeError, "tau must be a number; got str '0.5'"),
    (torch.tensor(0.5), TypeError, "tau must be a number; got Tensor"),
    (None, TypeError, "tau must be a number; got NoneType"),
]


@pytest.mark.parametrize("tau,error,message", BAD_TAUS, ids=[repr(t) for t, _, _ in BAD_TAUS])
def test_bad_tau_is_a_clear_error(tau, error, message):
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(error, match=message):
        complement.comp_sum_loss(logits, target, tau=tau)
    with pytest.raises(error, match=message):
        complement.CompSumLoss(tau)
    with pytest.raises(error, match=message):
        complement.get_loss("comp_sum", tau=tau)


def test_tau_is_required_by_the_function_and_the_inputs_are_checked():
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(TypeError, match="tau"):
        complement.comp_sum_loss(logits, target)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="comp_sum_loss: target contains class index 3"):
        complement.comp_sum_loss(logits, torch.tensor([0, 1, 3, 0]), tau=0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        complement.CompSumLoss(0.5, reduction="avg")
    with pytest.raises(ValueError, match=r"comp_sum_loss: weight must be a float tensor of shape \(3,\)"):
        complement.CompSumLoss(0.5, weight=torch.ones(2))(logits, target)


def test_registered_with_tau_1_by_default():
    logits, target = _inputs(7, 4)
    default = complement.get_loss("comp_sum")
    assert isinstance(default, complement.CompSumLoss) and default.tau == 1.0
    torch.testing.assert_close(default(logits, target), F.cross_entropy(logits, target))
    assert repr(complement.get_loss("comp_sum", tau=0.5)) == "CompSumLoss(tau=0.5, reduction='mean')"
    assert "comp_sum" in complement.available_losses()
    assert complement.comp_sum_loss is comp_sum_module.comp_sum_loss


def test_docs_list_every_registered_loss():
    text = DOCS.read_text()
    for name in complement.available_losses():
        assert f"| `{name}` |" in text, f"docs/losses.md does not list the registered loss {name!r}"
