"""The chunked output-layer op against the unfused reference on explicit logits.

Reference: ``logits = hidden @ weight.T + bias`` materialized, ``F.cross_entropy``
for CE and the textbook complement entropy of ``tests/references.py``; values and
the gradients of hidden, weight and bias are compared.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from complement.losses.linear import (
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
)
from complement.ops.chunked_linear import TORCH_TEMPORARY_BYTES, chunk_rows_for_budget
from tests.helpers.references import authors_guided_complement_entropy, complement_entropy_per_row

IGNORE = -100
TOLERANCE = {
    torch.float64: dict(rtol=1e-9, atol=1e-12),
    torch.float32: dict(rtol=1e-4, atol=1e-5),
    torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
}


@pytest.fixture(autouse=True)
def _eager_row_math(monkeypatch):
    # Small chunks run eagerly anyway; this keeps the file free of torch.compile time.
    monkeypatch.setenv("COMPLEMENT_KERNELS", "eager")


def _inputs(n, v, h=6, dtype=torch.float64, bias=True, ignored=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    weight = (torch.randn(v, h, generator=g, dtype=torch.float64) * 0.8).to(dtype).requires_grad_()
    b = (torch.randn(v, generator=g, dtype=torch.float64)).to(dtype).requires_grad_() if bias else None
    target = torch.randint(0, v, (n,), generator=g)
    target[list(ignored)] = IGNORE
    return hidden, weight, b, target


def _reference(hidden, weight, bias, target, reduction="mean", complement="entropy", alpha=0.333):
    """Unfused (CE, complement loss) on materialized logits, computed in float32 for half inputs."""
    logits = F.linear(hidden, weight, bias)
    if logits.dtype == torch.bfloat16:  # an unfused bf16 model rounds its logits to bf16; the loss upcasts
        logits = logits.float()
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    kept = target != IGNORE
    v = weight.shape[0]
    entropy = torch.zeros_like(ce)
    if kept.any():
        entropy = entropy.masked_scatter(kept, complement_entropy_per_row(logits[kept], target[kept]))
    if complement == "guided":
        comp = -((-ce).exp() ** alpha) * entropy / math.log(v)
    else:
        comp = -entropy / v
    comp = torch.where(kept, comp, torch.zeros_like(comp))
    if reduction == "none":
        return ce, comp
    if reduction == "sum":
        return ce.sum(), comp.sum()
    count = kept.sum().clamp(min=1)
    return ce.sum() / count, comp.sum() / count


def _grads(outputs, params, upstream):
    loss = sum((o * u).sum() for o, u in zip(outputs, upstream))
    return torch.autograd.grad(loss, [p for p in params if p is not None])


def _assert_close(ours, ref, dtype):
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype or dtype == torch.bfloat16
        torch.testing.assert_close(a.to(b.dtype), b, **TOLERANCE[dtype])


# --- values and gradients over chunk sizes, dtypes and reductions ----------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, 13, 100, None])
def test_joint_matches_unfused_reference(dtype, chunk_size):
    # N = 13 and V = 11 are not multiples of the chunk sizes: the last chunk is short.
    hidden, weight, bias, target = _inputs(13, 11, dtype=dtype, ignored=[2, 9])
    ours = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=chunk_size)
    ref = _reference(hidden, weight, bias, target)
    assert all(o.dtype == (torch.float32 if dtype == torch.bfloat16 else dtype) for o in ours)
    _assert_close(ours, ref, dtype)
    upstream = (1.0, 3.0)  # CE and the complement term weighted differently: both gradients count
    ours_grads = _grads(ours, (hidden, weight, bias), upstream)
    ref_grads = _grads(ref, (hidden, weight, bias), upstream)
    assert [g.dtype for g in ours_grads] == [dtype] * 3
    _assert_close(ours_grads, ref_grads, dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_reductions_and_optional_bias(reduction, with_bias):
    hidden, weight, bias, target = _inputs(10, 9, bias=with_bias, ignored=[0, 5])
    params = (hidden, weight, bias)
    ours = linear_cross_entropy_and_complement(hidden, weight, target, bias, reduction=reduction, chunk_size=3)
    ref = _reference(hidden, weight, bias, target, reduction=reduction)
    _assert_close(ours, ref, torch.float64)
    g = torch.Generator().manual_seed(1)
    upstream = [torch.rand(o.shape, generator=g, dtype=torch.float64) for o in ref]  # per-row weights for "none"
    _assert_close(_grads(ours, params, upstream), _grads(ref, params, upstream), torch.float64)


def test_leading_dimensions_like_a_language_model():
    hidden, weight, bias, target = _inputs(12, 7)
    hidden3, target3 = hidden.reshape(3, 4, -1), target.reshape(3, 4)
    ce, comp = linear_cross_entropy_and_complement(hidden3, weight, target3, bias, reduction="none", chunk_size=5)
    ref_ce, ref_comp = _reference(hidden, weight, bias, target, reduction="none")
    assert ce.shape == comp.shape == (3, 4)
    _assert_close((ce.reshape(-1), comp.reshape(-1)), (ref_ce, ref_comp), torch.float64)


# --- the thin functions: CE only, complement only, GCE ----------------------------------------
# With reduction "mean"/"sum" they compute gradients in the forward; "none" recomputes.

SINGLE_TERMS = {
    "ce": (linear_cross_entropy, lambda ref: ref[0]),
    "complement": (linear_complement_entropy, lambda ref: ref[1]),
    "guided": (linear_guided_complement_entropy, None),
}


def _single_reference(term, hidden, weight, bias, target, reduction):
    if term == "guided":
        return _reference(hidden, weight, bias, target, reduction=reduction, complement="guided")[1]
    return SINGLE_TERMS[term][1](_reference(hidden, weight, bias, target, reduction=reduction))


@pytest.mark.parametrize("term", list(SINGLE_TERMS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "dtype,chunk_size", [(torch.float64, 1), (torch.float64, 4), (torch.float32, None), (torch.bfloat16, 5)]
)
def test_single_term_functions(term, reduction, dtype, chunk_size):
    hidden, weight, bias, target = _inputs(13, 11, dtype=dtype, ignored=[0, 7])
    params = (hidden, weight, bias)
    ours = SINGLE_TERMS[term][0](hidden, weight, target, bias, reduction=reduction, chunk_size=chunk_size)
    ref = _single_reference(term, hidden, weight, bias, target, reduction)
    _assert_close([ours], [ref], dtype)
    upstream = torch.rand(ref.shape, generator=torch.Generator().manual_seed(2), dtype=ref.dtype) + 0.5
    ours_grads = _grads([ours], params, [upstream])
    assert [g.dtype for g in ours_grads] == [dtype] * 3
    _assert_close(ours_grads, _grads([ref], params, [upstream]), dtype)


@pytest.mark.parametrize("term", list(SINGLE_TERMS))
def test_single_term_all_ignored_and_partial_requires_grad(term):
    hidden, weight, bias, target = _inputs(5, 6, ignored=range(5))
    loss = SINGLE_TERMS[term][0](hidden, weight, target, bias)
    assert loss.item() == 0
    assert all(torch.count_nonzero(g) == 0 for g in torch.autograd.grad(loss, (hidden, weight, bias)))
    hidden, weight, bias, target = _inputs(7, 6)
    frozen = hidden.detach()  # e.g. a frozen backbone: only the head gets gradients
    loss = SINGLE_TERMS[term][0](frozen, weight, target, bias, chunk_size=3)
    ref = _single_reference(term, frozen, weight, bias, target, "mean")
    _assert_close(torch.autograd.grad(loss, (weight, bias)), torch.autograd.grad(ref, (weight, bias)), torch.float64)


@pytest.mark.parametrize("normalization,divisor", [("classes", 8), ("complement_classes", 7), ("none", 1)])
def test_complement_only(normalization, divisor):
    hidden, weight, bias, target = _inputs(11, 8, ignored=[4])
    ours = linear_complement_entropy(hidden, weight, target, bias, normalization=normalization, chunk_size=4)
    ref = _reference(hidden, weight, bias, target)[1] * 8 / divisor
    _assert_close([ours], [ref], torch.float64)
    params = (hidden, weight, bias)
    _assert_close(_grads([ours], params, [1.0]), _grads([ref], params, [1.0]), torch.float64)


def test_one_output_of_the_joint_op_unused():
    # COT's alternate mode back-propagates CE in step 1 and the complement in step 2.
    hidden, weight, bias, target = _inputs(9, 6)
    params = (hidden, weight, bias)
    for used in (0, 1):
        ref = _reference(hidden, weight, bias, target)
        ours = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=2)
        _assert_close(_grads([ours[used]], params, [1.0]), _grads([ref[used]], params, [1.0]), torch.float64)


@pytest.mark.parametrize("alpha", [0.333, 1.0])
def test_guided_complement_entropy(alpha):
    hidden, weight, bias, target = _inputs(10, 9)
    params = (hidden, weight, bias)
    ours = linear_guided_complement_entropy(hidden, weight, target, bias, alpha=alpha, chunk_size=3)
    ref = authors_guided_complement_entropy(F.linear(hidden, weight, bias), target, alpha)
    _assert_close([ours], [ref], torch.float64)
    _assert_close(_grads([ours], params, [1.0]), _grads([ref], params, [1.0]), torch.float64)
    _, gce = linear_cross_entropy_and_complement(hidden, weight, target, bias, complement="guided", alpha=alpha)
    _assert_close([gce], [ref], torch.float64)


# --- ignore_index ------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_targets_ignored_give_zero_with_zero_gradient(reduction):
    hidden, weight, bias, target = _inputs(5, 6, ignored=range(5))
    ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, reduction=reduction)
    assert torch.count_nonzero(ce) == 0 and torch.count_nonzero(comp) == 0
    grads = torch.autograd.grad((ce + comp).sum(), (hidden, weight, bias))
    assert all(torch.count_nonzero(g) == 0 for g in grads)


def test_ignored_rows_get_no_gradient():
    hidden, weight, bias, target = _inputs(8, 6, ignored=[1, 6])
    ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=3)
    (grad_hidden,) = torch.autograd.grad(ce + comp, hidden)
    assert torch.count_nonzero(grad_hidden[[1, 6]]) == 0


def test_custom_ignore_index():
    hidden, weight, bias, target = _inputs(8, 6)
    target[3] = 5  # ignore class 5 as if it were padding
    ours = linear_cross_entropy(hidden, weight, target, bias, ignore_index=5)
    torch.testing.assert_close(ours, F.cross_entropy(F.linear(hidden, weight, bias), target, ignore_index=5))


# --- memory: no N x V tensor, chunk rows from the budget --------------------------------------


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("loss", ["joint", "single"])
def test_never_materializes_the_logits(loss):
    n, v, h, chunk = 64, 50, 4, 3
    hidden, weight, bias, target = _inputs(n, v, h=h, dtype=torch.float32, ignored=[7])
    with _LargestTensor() as mode:
        if loss == "joint":
            total = sum(linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=chunk))
        else:
            total = linear_guided_complement_entropy(hidden, weight, target, bias, chunk_size=chunk)
        torch.autograd.grad(total, (hidden, weight, bias))
    # The largest tensors are one chunk of logits (chunk x V) and the weight gradient (V x H).
    assert mode.largest <= max(chunk * v, v * h, n * h) < n * v


def test_chunk_rows_follow_the_memory_budget():
    for mode, extra in TORCH_TEMPORARY_BYTES.items():
        per_row = 1000 * (4 + extra)
        assert chunk_rows_for_budget(1000, torch.float32, 10 * per_row, mode=mode) == 10
    eager_row = 1000 * (4 + TORCH_TEMPORARY_BYTES["eager"])
    assert chunk_rows_for_budget(1000, torch.float32, 10 * eager_row) == 10  # this file runs eager row math
    assert chunk_rows_for_budget(1000, torch.float32, 1) == 1  # never zero rows
    assert chunk_rows_for_budget(1000, torch.bfloat16, 10 * 1000 * 2, triton=True) == 10
    hidden, weight, bias, target = _inputs(9, 7)
    tiny = linear_cross_entropy_and_complement(hidden, weight, target, bias, memory_budget_bytes=1)
    _assert_close(tiny, _reference(hidden, weight, bias, target), torch.float64)


@pytest.mark.parametrize("chunk_size", [3, None])  # several chunks (recomputed) and one (logits kept)
def test_backward_twice_with_retain_graph(chunk_size):
    hidden, weight, bias, target = _inputs(8, 6)
    ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=chunk_size)
    first = torch.autograd.grad(ce + comp, (hidden, weight, bias), retain_graph=True)
    second = torch.autograd.grad(ce + comp, (hidden, weight, bias))
    _assert_close(second, first, torch.float64)
    ref = _grads(_reference(hidden, weight, bias, target), (hidden, weight, bias), (1, 1))
    _assert_close(first, ref, torch.float64)


def test_no_grad_forward():
    hidden, weight, bias, target = _inputs(6, 5)
    with torch.no_grad():
        ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=2)
        ce_only = linear_cross_entropy(hidden, weight, target, bias, chunk_size=2)
    assert not ce.requires_grad and not ce_only.requires_grad
    _assert_close((ce, comp, ce_only), _reference(hidden, weight, bias, target) + (ce,), torch.float64)


# --- bad inputs ---------------------------------------------------------------------------------


def _bad(**changes):
    hidden, weight, bias, target = _inputs(4, 5, dtype=torch.float32)
    args = dict(hidden=hidden, weight=weight, target=target, bias=bias)
    kwargs = {k: changes.pop(k) for k in list(changes) if k not in args}
    args.update(changes)
    return lambda: linear_cross_entropy_and_complement(**args, **kwargs)


@pytest.mark.parametrize(
    "changes,error,match",
    [
        (dict(weight=torch.randn(5, 7)), ValueError, r"weight must have shape \(V, H\) = \(num_classes, 6\)"),
        (dict(weight=torch.randn(6, 5)), ValueError, "not its transpose"),
        (dict(weight=torch.randn(5, 6, dtype=torch.float64)), TypeError, "weight dtype torch.float64 differs"),
        (dict(bias=torch.randn(4)), ValueError, r"bias must have shape \(5,\)"),
        (dict(hidden=torch.ones(4, 6, dtype=torch.long)), TypeError, "floating-point hidden states"),
        (dict(target=torch.zeros(3, dtype=torch.long)), ValueError, r"and target of shape \(3,\) do not fit"),
        (dict(target=torch.zeros(4)), TypeError, "integer class indices"),
        (dict(target=torch.tensor([0, 1, 5, 2])), ValueError, r"class index 5, outside the valid range \[0, 4\]"),
        (
            dict(weight=torch.randn(1, 6), bias=None, target=torch.zeros(4, dtype=torch.long)),
            ValueError,
            "at least 2 classes",
        ),
        (dict(reduction="avg"), ValueError, "reduction must be one of"),
        (dict(normalization="batch"), ValueError, "normalization must be one of"),
        (dict(complement="focal"), ValueError, "complement must be one of"),
        (dict(complement="guided", alpha=-1.0), ValueError, "alpha must be >= 0"),
        (dict(chunk_size=0), ValueError, "chunk_size must be a positive number of rows"),
        (dict(memory_budget_bytes=0), ValueError, "memory_budget_bytes must be a positive integer"),
        (dict(backend="cuda"), ValueError, "backend must be one of"),
        (dict(bias=[0.0] * 5), TypeError, "bias to be a tensor or None"),
    ],
)
def test_bad_inputs_raise_clear_errors(changes, error, match):
    with pytest.raises(error, match=match):
        _bad(**changes)()


def test_triton_backend_refuses_float64():
    hidden, weight, bias, target = _inputs(4, 5)
    pytest.importorskip("triton")
    with pytest.raises(TypeError, match="use backend='torch' for float64"):
        linear_cross_entropy(hidden, weight, target, bias, backend="triton")


# --- CUDA: the Triton backend against the torch backend -----------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_backends_agree(dtype):
    pytest.importorskip("triton")
    hidden, weight, bias, target = _inputs(300, 5000, h=64, dtype=dtype, ignored=[3, 200])
    hidden, weight, bias, target = (
        t.detach().cuda().requires_grad_(t.is_floating_point()) for t in (hidden, weight, bias, target)
    )
    params = (hidden, weight, bias)
    results = {}
    for backend in ("torch", "triton"):
        out = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=128, backend=backend)
        results[backend] = (out, _grads(out, params, (1.0, 2.0)))
    _assert_close(results["triton"][0], results["torch"][0], torch.float32)
    _assert_close(results["triton"][1], results["torch"][1], dtype)
    ref = _reference(hidden, weight, bias, target)
    _assert_close(results["triton"][0], ref, dtype)


# --- the chunked twins in the registry, and where the functions live ---------------------------


@pytest.mark.parametrize(
    "name,kwargs,reference",
    [
        ("cross_entropy", {}, lambda z, t: F.cross_entropy(z, t, ignore_index=IGNORE)),
        ("cot", {"normalization": "max_entropy"}, "complement_entropy"),
        ("gce", {"alpha": 0.5}, "guided_complement_entropy"),
    ],
)
def test_registry_twins_equal_their_losses_on_materialized_logits(name, kwargs, reference):
    import complement

    hidden, weight, bias, target = _inputs(9, 7, ignored=[3])
    twin = complement.get_chunked_loss(name, ignore_index=IGNORE, **kwargs)
    loss = complement.get_loss(name, ignore_index=IGNORE, **kwargs) if isinstance(reference, str) else reference
    ours, ref = twin(hidden, weight, target, bias), loss(F.linear(hidden, weight, bias), target)
    torch.testing.assert_close(ours, ref, **TOLERANCE[torch.float64])
    params = (hidden, weight, bias)
    torch.testing.assert_close(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params))


def test_twins_offer_cross_entropy_with_themselves_in_one_pass():
    import complement

    hidden, weight, bias, target = _inputs(9, 7, ignored=[3])
    for name in ("cot", "gce"):
        twin = complement.get_chunked_loss(name, ignore_index=IGNORE)
        ce, comp = twin.with_cross_entropy(hidden, weight, target, bias)
        torch.testing.assert_close(ce, F.cross_entropy(F.linear(hidden, weight, bias), target, ignore_index=IGNORE))
        torch.testing.assert_close(comp, twin(hidden, weight, target, bias))


def test_twin_errors_name_the_loss_and_the_fix():
    import complement

    with pytest.raises(ValueError, match="loss 'focal' has no chunked twin.*Return materialized logits"):
        complement.get_chunked_loss("focal")
    with pytest.raises(TypeError, match="chunked twin of loss 'ce' .*label_smoothing"):
        complement.get_chunked_loss("ce", label_smoothing=0.1)
    hidden, weight, bias, target = _inputs(4, 7)
    with pytest.raises(ValueError, match="built with num_classes=5, but the output layer has 7 rows"):
        complement.get_chunked_loss("cot", num_classes=5)(hidden, weight, target, bias)


def test_the_linear_losses_moved_to_the_loss_layer():
    import complement
    import complement.ops

    assert complement.linear_cross_entropy is linear_cross_entropy
    with pytest.raises(AttributeError, match="moved to complement.linear_cross_entropy"):
        complement.ops.linear_cross_entropy  # noqa: B018


def test_auto_backend_is_torch_on_every_device_until_triton_runs_on_hardware():
    from complement.ops.chunked_linear import TorchRows, row_backend

    for device in ("cpu", "meta"):  # "meta" stands for any accelerator: the rule looks at no device
        assert row_backend("auto", torch.empty(2, 3, device=device)) is TorchRows
    with pytest.raises(ValueError, match="backend must be one of"):
        row_backend("cuda", torch.empty(2, 3))


def test_bf16_weight_and_bias_gradients_accumulate_over_chunks_in_float32():
    # 400 one-row chunks: adding their bf16 contributions in bf16 drifts by many ulps; in float32 it does not.
    g = torch.Generator().manual_seed(0)
    n, v, h = 400, 16, 8
    hidden = torch.randn(n, h, generator=g).bfloat16().requires_grad_()
    weight = torch.randn(v, h, generator=g).bfloat16().requires_grad_()
    bias = torch.randn(v, generator=g).bfloat16().requires_grad_()
    target = torch.randint(0, v, (n,), generator=g)
    loss = linear_cross_entropy(hidden, weight, target, bias, reduction="sum", chunk_size=1)
    grad_weight, grad_bias = torch.autograd.grad(loss, (weight, bias))
    # Reference: each chunk's dLoss/dlogits as the op forms it (bf16 logits, float32 math, bf16 G) and its
    # product with the chunk's hidden states in bf16, as the op computes them; the sum over chunks in float64.
    z = F.linear(hidden, weight, bias).detach().float()
    grad_logits = ((z - z.logsumexp(1, keepdim=True)).exp() - F.one_hot(target, v).float()).bfloat16()
    rows = [torch.mm(grad_logits[i : i + 1].t(), hidden[i : i + 1].detach()).double() for i in range(n)]
    ref_weight, ref_bias = torch.stack(rows).sum(0).bfloat16(), grad_logits.double().sum(0).bfloat16()
    for ours, ref in ((grad_weight, ref_weight), (grad_bias, ref_bias)):
        assert ours.dtype == torch.bfloat16
        one_ulp = torch.finfo(torch.bfloat16).eps * ref.float().abs()  # the final rounding, at most one ulp
        assert ((ours.float() - ref.float()).abs() <= one_ulp).all()
