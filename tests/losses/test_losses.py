"""The complement-loss family against independent plain-torch references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import complement
from complement.ops import JointFunction, complement_entropy_rows
from complement.ops.complement_entropy import ComplementEntropyFunction, EagerComplementEntropyFunction
from complement.ops.joint import EagerJointFunction
from tests.helpers.references import (
    authors_complement_entropy,
    authors_guided_complement_entropy,
    complement_cross_entropy_reference,
    complement_entropy_per_row,
    focal_reference,
)

SHAPES = [(1, 3), (7, 10), (64, 100), (33, 1000)]


def _inputs(n, k, dtype=torch.float64, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, k, generator=g, dtype=dtype) * scale).requires_grad_()
    target = torch.randint(0, k, (n,), generator=g)
    return logits, target


def _grad(loss, logits):
    (grad,) = torch.autograd.grad(loss, logits)
    return grad


# --- value and gradient equal the authors' formula (no epsilons), float64 -----------------


@pytest.mark.parametrize("n,k", SHAPES)
def test_complement_entropy_matches_authors_formula(n, k):
    logits, target = _inputs(n, k)
    ours = complement.complement_entropy(logits, target)
    ref = authors_complement_entropy(logits, target)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(_grad(ours, logits), _grad(ref, logits), rtol=1e-6, atol=1e-12)


def test_module_is_a_drop_in_for_the_authors_class():
    logits, target = _inputs(16, 10, dtype=torch.float32, scale=1.0)
    ours = complement.ComplementEntropy(10)(logits, target)
    with_eps = authors_complement_entropy(logits, target, eps=True)
    torch.testing.assert_close(ours, with_eps, rtol=1e-4, atol=1e-6)
    assert ours.item() < 0  # minimizing it maximizes complement entropy


def test_exact_where_authors_epsilons_distort():
    # p_g = 1 - ~1e-26: 1 - p_g rounds to 0 and the authors' epsilons dominate.
    logits, target = _inputs(8, 10)
    with torch.no_grad():
        logits.scatter_(1, target.unsqueeze(1), 60.0)
    ours = complement.complement_entropy(logits, target)
    exact = -complement_entropy_per_row(logits, target).sum() / (8 * 10)
    authors = authors_complement_entropy(logits, target, eps=True)
    assert torch.isfinite(ours) and torch.isfinite(_grad(ours, logits)).all()
    torch.testing.assert_close(ours, exact, rtol=1e-6, atol=0)
    assert abs(authors.item() - exact.item()) > 0.01 * abs(exact.item())


FUNCTIONS = [ComplementEntropyFunction, EagerComplementEntropyFunction, JointFunction, EagerJointFunction]


def _outputs(value):
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("weight, reduce", [(1.0, False), (-0.3, False), (-0.3, True)])
def test_gradcheck_functions(function, weight, reduce):
    logits, target = _inputs(6, 7)
    weights = (0.5, weight) if function in (JointFunction, EagerJointFunction) else (weight,)
    assert torch.autograd.gradcheck(lambda z: function.apply(z, target, *weights, reduce), (logits,))
    # weighted (and summed) outputs equal weighting (and summing) the plain rows
    for rows, value, w in zip(
        _outputs(function.apply(logits, target)), _outputs(function.apply(logits, target, *weights, reduce)), weights
    ):
        torch.testing.assert_close(value, rows.sum() * w if reduce else rows * w)


@pytest.mark.parametrize(
    "logits_space, probability_space",
    [(ComplementEntropyFunction, EagerComplementEntropyFunction), (JointFunction, EagerJointFunction)],
)
def test_both_formulations_agree_on_edge_rows(monkeypatch, logits_space, probability_space):
    """The logits-space Function (compiled, or eager when compiling fails) and the
    probability-space one (eager) give the same values and gradients, also where
    p_g rounds to 1, on excluded (-inf) classes, and with two classes."""
    monkeypatch.setenv("COMPLEMENT_KERNELS", "eager")  # the logits-space math runs uncompiled
    for n, k in [(9, 10), (5, 2)]:
        logits, target = _inputs(n, k)
        with torch.no_grad():
            logits[0, target[0]] = 60.0  # 1 - p_g ~ 1e-26
            if k > 2:
                logits[1, (target[1] + 1) % k] = float("-inf")
        weights = torch.rand(n, dtype=torch.float64)  # an uneven upstream gradient
        results = []
        for function in (logits_space, probability_space):
            outputs = function.apply(logits, target)
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            loss = sum((out * weights * (i + 1)).sum() for i, out in enumerate(outputs))
            results.append((*outputs, _grad(loss, logits)))
        for a, b in zip(*results):
            assert torch.isfinite(b).all()
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_compiled_kernels_match_eager(monkeypatch):
    logits, target = _inputs(64, 1200, dtype=torch.float32)
    results = {}
    for mode in ("eager", "compiled"):
        monkeypatch.setenv("COMPLEMENT_KERNELS", mode)
        ce, comp = complement.cross_entropy_and_complement_entropy(logits, target)
        single = complement.complement_entropy(logits, target)
        results[mode] = (ce, comp, single, _grad(ce + 0.5 * comp, logits), _grad(single, logits))
    for eager, compiled in zip(results["eager"], results["compiled"]):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


def test_works_under_torch_compile():
    logits, target = _inputs(16, 12, dtype=torch.float32)
    compiled = torch.compile(lambda z, t: complement.complement_entropy(z, t) * 2.0)
    value = compiled(logits, target)
    eager = complement.complement_entropy(logits, target) * 2.0
    torch.testing.assert_close(value, eager)
    torch.testing.assert_close(_grad(value, logits), _grad(eager, logits))


# --- dtypes, shapes, edge cases --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32(dtype):
    logits32, target = _inputs(32, 50, dtype=torch.float32, scale=2.0)
    half = logits32.detach().to(dtype).requires_grad_()
    value = complement.complement_entropy(half, target)
    assert value.dtype == torch.float32
    reference = complement.complement_entropy(half.detach().float(), target)
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)
    grad = _grad(value, half)
    assert grad.dtype == dtype and torch.isfinite(grad).all()


def test_two_classes_give_zero_value_and_gradient():
    logits, target = _inputs(9, 2)
    value = complement.complement_entropy(logits, target)
    assert value.item() == 0.0
    assert torch.count_nonzero(_grad(value, logits)) == 0


def test_all_targets_ignored_give_zero_not_nan():
    logits, _ = _inputs(4, 5)
    target = torch.full((4,), -100)
    for loss in (
        complement.complement_entropy,
        complement.guided_complement_entropy,
        complement.complement_cross_entropy,
    ):
        value = loss(logits, target)
        assert value.item() == 0.0
        assert torch.count_nonzero(_grad(value, logits)) == 0


def test_empty_batch_gives_zero():
    logits = torch.zeros(0, 5, requires_grad=True)
    value = complement.complement_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert value.item() == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
# below the class range, a valid class index (must still be masked), above the range; with and without ignored rows
@pytest.mark.parametrize("ignore_index", [-1, 2, 7])
@pytest.mark.parametrize("with_ignored", [True, False])
def test_spatial_input_with_ignore_index_equals_kept_rows(reduction, ignore_index, with_ignored):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 6, (3, 4, 5), generator=g)
    if ignore_index == 2 and not with_ignored:
        target[target == 2] = 3
    if with_ignored:
        target[0, 1, :] = ignore_index
        target[2, 3, 2] = ignore_index
    value = complement.complement_entropy(logits, target, ignore_index=ignore_index, reduction=reduction)
    flat_logits = logits.movedim(1, -1).reshape(-1, 6)
    flat_target = target.reshape(-1)
    kept = flat_target != ignore_index
    assert bool(kept.all()) != with_ignored
    rows = -complement_entropy_per_row(flat_logits[kept], flat_target[kept]) / 6
    if reduction == "none":
        assert value.shape == target.shape
        torch.testing.assert_close(value.reshape(-1)[kept], rows)
        assert (value.reshape(-1)[~kept] == 0).all()
        expected_total = rows.sum()
        value_total = value.sum()
    else:
        expected_total = rows.sum() if reduction == "sum" else rows.mean()
        value_total = value
    torch.testing.assert_close(value_total, expected_total)
    torch.testing.assert_close(_grad(value_total, logits), _grad(expected_total, logits))


def test_unbatched_input():
    logits, target = _inputs(1, 8)
    value = complement.complement_entropy(logits[0], target[0])
    torch.testing.assert_close(value, complement.complement_entropy(logits, target))


@pytest.mark.parametrize(
    "normalization,divisor",
    [
        ("classes", 10),
        ("complement_classes", 9),
        ("log_classes", math.log(10)),
        ("max_entropy", math.log(9)),
        ("none", 1),
    ],
)
def test_normalizations(normalization, divisor):
    logits, target = _inputs(12, 10)
    value = complement.complement_entropy(logits, target, normalization=normalization)
    expected = -complement_entropy_per_row(logits, target).mean() / divisor
    torch.testing.assert_close(value, expected)


def test_nan_logit_propagates_and_minus_inf_excludes_a_class():
    logits, target = _inputs(4, 6)
    logits = logits.detach()
    target = torch.tensor([0, 0, 0, 0])
    nan_logits = logits.clone()
    nan_logits[1, 3] = float("nan")
    assert torch.isnan(complement.complement_entropy(nan_logits, target))
    excluded = logits.clone()
    excluded[:, 5] = float("-inf")
    value = complement.complement_entropy(excluded, target, normalization="none")
    expected = -complement_entropy_per_row(logits[:, :5], target).mean()
    torch.testing.assert_close(value, expected)
    leaf = excluded.clone().requires_grad_()
    grad = _grad(complement.complement_entropy(leaf, target), leaf)
    assert torch.isfinite(grad).all() and (grad[:, 5] == 0).all()


# --- properties -----------------------------------------------------------------------------

logit_rows = st.integers(min_value=3, max_value=40).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-30, 30, allow_nan=False), min_size=k, max_size=k),
        st.integers(0, k - 1),
    )
)


@settings(max_examples=60, deadline=None)
@given(logit_rows, st.floats(-50, 50), st.floats(-30, 30))
def test_entropy_properties(row, shift, new_target_logit):
    values, g = row
    k = len(values)
    logits = torch.tensor([values], dtype=torch.float64)
    target = torch.tensor([g])
    entropy = complement_entropy_rows(logits, target)
    assert -1e-12 <= entropy.item() <= math.log(k - 1) + 1e-12
    torch.testing.assert_close(complement_entropy_rows(logits + shift, target), entropy, rtol=1e-9, atol=1e-9)
    moved = logits.clone()
    moved[0, g] = new_target_logit
    torch.testing.assert_close(complement_entropy_rows(moved, target), entropy, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 30), st.floats(0.01, 3.0), st.integers(0, 10_000))
def test_maximum_at_uniform_complement(k, noise, seed):
    target = torch.tensor([0])
    uniform = torch.zeros(1, k, dtype=torch.float64)
    uniform[0, 0] = 5.0
    top = complement_entropy_rows(uniform, target)
    torch.testing.assert_close(top, torch.tensor([math.log(k - 1)], dtype=torch.float64))
    perturbed = uniform + noise * torch.randn(1, k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    assert complement_entropy_rows(perturbed, target).item() <= top.item() + 1e-12
    logits = uniform.clone().requires_grad_()
    grad = _grad(complement_entropy_rows(logits, target).sum(), logits)
    assert grad.abs().max().item() < 1e-12  # a stationary point


# --- the rest of the family -----------------------------------------------------------------


@pytest.mark.parametrize("n,k", SHAPES[1:])
def test_guided_complement_entropy_matches_authors(n, k):
    logits, target = _inputs(n, k)
    ours = complement.guided_complement_entropy(logits, target, alpha=0.333)
    ref = authors_guided_complement_entropy(logits, target, alpha=0.333)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(_grad(ours, logits), _grad(ref, logits), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("factor", [0.0, 1.0, 2.5])
def test_complement_cross_entropy_raises_complement_entropy(factor):
    logits, target = _inputs(20, 7)
    ours = complement.complement_cross_entropy(logits, target, balancing_factor=factor)
    ref = complement_cross_entropy_reference(logits, target, factor)
    torch.testing.assert_close(ours, ref)
    grad = _grad(ours, logits)
    torch.testing.assert_close(grad, _grad(ref, logits))
    if factor > 0:  # the complement term's descent direction raises the complement entropy
        before = complement_entropy_per_row(logits, target).mean()
        plain = complement.complement_cross_entropy(logits, target, balancing_factor=0.0)
        step = logits - 0.5 * (grad - _grad(plain, logits))
        assert complement_entropy_per_row(step, target).mean() > before


def test_joint_equals_separate_losses():
    logits, target = _inputs(30, 9)
    target[3] = -100
    ce, comp = complement.cross_entropy_and_complement_entropy(logits, target, normalization="complement_classes")
    ref_ce = F.cross_entropy(logits, target)
    ref_comp = complement.complement_entropy(logits, target, normalization="complement_classes")
    torch.testing.assert_close(ce, ref_ce)
    torch.testing.assert_close(comp, ref_comp)
    torch.testing.assert_close(_grad(ce + 0.7 * comp, logits), _grad(ref_ce + 0.7 * ref_comp, logits))


def test_focal_loss():
    logits, target = _inputs(25, 6)
    torch.testing.assert_close(complement.focal_loss(logits, target, gamma=2.0), focal_reference(logits, target, 2.0))
    weight = torch.rand(6, dtype=torch.float64)
    target[0] = -100
    torch.testing.assert_close(
        complement.focal_loss(logits, target, gamma=0.0, weight=weight), F.cross_entropy(logits, target, weight=weight)
    )


def test_registry_builds_every_loss():
    logits, target = _inputs(8, 5, dtype=torch.float32)
    for name in complement.available_losses():
        loss = complement.get_loss(name)(logits, target)
        assert loss.shape == () and torch.isfinite(loss)
    assert isinstance(complement.get_loss("cot", num_classes=5), complement.ComplementEntropy)
    assert complement.get_loss("ls").label_smoothing == 0.1


# --- bad input gets a clear error ------------------------------------------------------------

BAD_INPUTS = [
    (lambda: complement.complement_entropy(torch.randn(4, 5), torch.tensor([0, 1, 5, 2])), ValueError, "class index 5"),
    (
        lambda: complement.complement_entropy(torch.randn(4, 5), torch.tensor([0, -3, 1, 2])),
        ValueError,
        "class index -3",
    ),
    (lambda: complement.complement_entropy(torch.randn(4, 5), torch.rand(4, 5)), TypeError, "integer class indices"),
    (
        lambda: complement.complement_entropy(torch.randn(4, 5), torch.zeros(3, dtype=torch.long)),
        ValueError,
        r"logits of shape \(4, 5\) and target of shape \(3,\) do not fit; expected target shape \(4,\)",
    ),
    (
        lambda: complement.complement_entropy(torch.randn(4, 1), torch.zeros(4, dtype=torch.long)),
        ValueError,
        "at least 2 classes",
    ),
    (
        lambda: complement.complement_entropy(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), reduction="avg"),
        ValueError,
        "reduction must be one of",
    ),
    (
        lambda: complement.complement_entropy(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), normalization="k"),
        ValueError,
        "normalization must be one of",
    ),
    (
        lambda: complement.complement_entropy(torch.ones(4, 5, dtype=torch.long), torch.zeros(4, dtype=torch.long)),
        TypeError,
        "floating-point logits",
    ),
    (lambda: complement.complement_entropy(torch.tensor(1.0), torch.tensor(0)), ValueError, "got a scalar"),
    (
        lambda: complement.complement_entropy(torch.randn(5), torch.zeros(2, dtype=torch.long)),
        ValueError,
        r"logits of shape \(5,\) and target of shape \(2,\) do not fit; expected target shape \(\)",
    ),
    (
        lambda: complement.ComplementEntropy(10)(torch.randn(4, 5), torch.zeros(4, dtype=torch.long)),
        ValueError,
        "num_classes=10",
    ),
    (lambda: complement.ComplementEntropy(1), ValueError, "at least 2 classes"),
    (lambda: complement.ComplementEntropy(reduction="bad"), ValueError, "reduction must be one of"),
    (
        lambda: complement.guided_complement_entropy(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), alpha=-1),
        ValueError,
        "alpha must be >= 0",
    ),
    (
        lambda: complement.complement_cross_entropy(
            torch.randn(4, 5), torch.zeros(4, dtype=torch.long), balancing_factor=-1
        ),
        ValueError,
        "sign bug",
    ),
    (
        lambda: complement.focal_loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), gamma=-2),
        ValueError,
        "gamma must be >= 0",
    ),
    (
        lambda: complement.focal_loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), weight=torch.ones(3)),
        ValueError,
        r"weight must be a float tensor of shape \(5,\)",
    ),
    (lambda: complement.get_loss("hinge"), ValueError, "unknown loss 'hinge'"),
    (lambda: complement.get_loss("cot", alpha=1.0), TypeError, "does not accept"),
]


@pytest.mark.parametrize("call,error,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_bad_input_raises_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_bad_kernel_mode(monkeypatch):
    monkeypatch.setenv("COMPLEMENT_KERNELS", "gpu")
    with pytest.raises(ValueError, match="COMPLEMENT_KERNELS must be one of"):
        complement.complement_entropy(torch.randn(4, 5), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_target_logit_makes_its_row_nan_in_every_loss_and_path(monkeypatch, mode, bad):
    """H does not depend on z_g, yet a broken model must not get a finite loss (F.cross_entropy's rule)."""
    monkeypatch.setenv("COMPLEMENT_KERNELS", mode)
    from complement.losses.linear import linear_complement_entropy, linear_cross_entropy_and_complement

    logits, target = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 2, 0])
    logits[1, 2] = bad  # row 1's target logit
    rows = complement.complement_entropy(logits, target, reduction="none")
    assert torch.isfinite(rows[[0, 2]]).all() and torch.isnan(rows[1])
    assert torch.isnan(complement.complement_entropy(logits, target))
    assert torch.isnan(complement.cross_entropy_and_complement_entropy(logits, target)[1])
    assert torch.isnan(complement.guided_complement_entropy(logits, target))
    assert torch.isnan(complement.complement_cross_entropy(logits, target))
    hidden, eye = torch.eye(3), torch.eye(3, 5).t().contiguous()  # logits = hidden @ W.T + b, b carries them
    bias_logits = logits  # one chunk per row: put each row's logits in the bias of a zero layer
    for i in range(3):
        value = linear_complement_entropy(hidden[i : i + 1] * 0, eye * 0, target[i : i + 1], bias_logits[i])
        assert torch.isnan(value) == (i == 1)
    assert torch.isnan(linear_cross_entropy_and_complement(hidden[1:2] * 0, eye * 0, target[1:2], logits[1])[1])


# --- the comp-sum baselines: generalized cross-entropy and MAE --------------------------------


def _probability_reference(logits, target, row, weight=None, ignore_index=-100, reduction="mean"):
    """From softmax probabilities, in float64, with F.cross_entropy's weighting and ignoring."""
    kept = target != ignore_index
    safe = torch.where(kept, target, torch.zeros_like(target))
    p = logits.double().softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)
    w = kept.double() * (weight.double()[safe] if weight is not None else 1.0)
    rows = torch.where(kept, row(p) * w, torch.zeros_like(p))
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / w.sum()


COMP_SUM = [
    ("generalized_cross_entropy", {"q": 0.7}, lambda p: (1 - p**0.7) / 0.7),
    ("generalized_cross_entropy", {"q": 1.0}, lambda p: 1 - p),
    ("mean_absolute_error", {}, lambda p: 2 * (1 - p)),
]


@pytest.mark.parametrize("name,options,row", COMP_SUM)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_comp_sum_losses_equal_their_probability_formulas(name, options, row, reduction, weighted):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (9,), generator=g)
    target[2] = -100
    weight = torch.rand(5, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    fn = getattr(complement, name)
    ours = fn(logits, target, weight, reduction=reduction, **options)
    ref = _probability_reference(logits, target, row, weight, reduction=reduction)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(*(torch.autograd.grad(v.sum(), logits) for v in (ours, ref)))
    module = complement.get_loss(name, weight=weight, reduction=reduction, **options)
    torch.testing.assert_close(module(logits, target), ours)


def test_generalized_cross_entropy_tends_to_cross_entropy_and_is_registered_apart_from_gce():
    logits, target = torch.randn(6, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    near_ce = complement.generalized_cross_entropy(logits, target, q=1e-6)
    torch.testing.assert_close(near_ce, F.cross_entropy(logits, target), rtol=1e-5, atol=1e-5)
    assert complement.get_loss("gen_ce").__class__.__name__ == "GeneralizedCrossEntropy"
    assert complement.get_loss("gce").__class__.__name__ == "GuidedComplementEntropy"
    assert "q=0.7" in repr(complement.get_loss("gen_ce")) and "smoothing=0.1" in repr(complement.get_loss("ls"))
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\]"):
        complement.generalized_cross_entropy(logits, target, q=0.0)
    tiny = torch.tensor([[80.0, -80.0, 0.0]], dtype=torch.float32)  # p_g ~ 1e-70: exp(q log p) stays finite
    assert torch.isfinite(complement.generalized_cross_entropy(tiny, torch.tensor([1])))
