"""The Triton kernel against plain-torch references.

On CPU the kernel runs in Triton's interpreter (numpy). Triton picks interpreter or
compiler once per process, when it is imported, so the interpreter tests run in a
child ``pytest`` started with ``TRITON_INTERPRET=1`` (``test_interpreter_tests``); in
this process they are skipped. The compiled path is checked by lowering the kernel to
PTX for sm_90 (no GPU needed) and, on a machine with a GPU, by running it (``-m cuda``).
The whole file is skipped when triton is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

triton = pytest.importorskip("triton")

from complement.losses.linear import (  # noqa: E402
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
)
from complement.ops import triton_loss  # noqa: E402
from tests.helpers.references import complement_entropy_per_row  # noqa: E402

interpreter = pytest.mark.skipif(
    not triton_loss.INTERPRETED, reason="runs in the TRITON_INTERPRET=1 child process of test_interpreter_tests"
)


@pytest.fixture(autouse=True)
def _eager_row_math(monkeypatch):
    monkeypatch.setenv("COMPLEMENT_KERNELS", "eager")  # the torch backend, compared with in one test, stays eager


@pytest.mark.skipif(triton_loss.INTERPRETED, reason="this is the child process")
def test_interpreter_tests():
    env = dict(os.environ, TRITON_INTERPRET="1", COMPLEMENT_KERNELS="eager")
    child = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"]
        + ["-m", "not cuda", "-k", "interpreter and not interpreter_tests"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-3000:]
    assert " passed" in child.stdout and "skipped" not in child.stdout.splitlines()[-1], child.stdout[-2000:]


def _logits(n, k, dtype=torch.float32, scale=3.0, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, k, generator=g, dtype=torch.float64) * scale).to(dtype)
    target = torch.randint(0, k, (n,), generator=g)
    return logits.to(device), target.to(device)


def _reference(logits, target, grad_ce, grad_entropy):
    """Per-row CE and H, and the gradient of sum(a * CE + b * H), in float64 from the textbook formulas."""
    z = logits.double().requires_grad_()
    ce = F.cross_entropy(z, target, reduction="none")
    entropy = complement_entropy_per_row(z, target)
    (grad,) = torch.autograd.grad((grad_ce.double() * ce + grad_entropy.double() * entropy).sum(), z)
    return ce, entropy, grad


TOLERANCE = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float16: dict(rtol=1e-3, atol=2e-3),
    torch.bfloat16: dict(rtol=1e-2, atol=1e-2),
}


@interpreter
@pytest.mark.parametrize(
    "dtype,k,max_block",
    [
        (torch.float32, 2, 32768),
        (torch.float32, 10, 32768),
        (torch.float32, 50, 16),
        (torch.float32, 300, 64),
        (torch.float16, 50, 16),
        (torch.bfloat16, 300, 64),
    ],
)
def test_interpreter_values_and_gradient_in_place(dtype, k, max_block):
    # max_block < k runs the online rescaling across several blocks, with a short last block.
    logits, target = _logits(6, k, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    grad_ce, grad_entropy = torch.rand(6, generator=g), torch.rand(6, generator=g)
    ref_ce, ref_entropy, ref_grad = _reference(logits, target, grad_ce, grad_entropy)
    buffer = logits.clone()
    ce, entropy = triton_loss.loss_rows(buffer, target, grad_ce=grad_ce, grad_entropy=grad_entropy, max_block=max_block)
    exact = dict(rtol=1e-5, atol=1e-5)  # the kernel computes in float32 from the (rounded) inputs
    torch.testing.assert_close(ce.double(), ref_ce.detach(), **exact)
    torch.testing.assert_close(entropy.double(), ref_entropy.detach(), **exact)
    assert buffer.dtype == dtype
    torch.testing.assert_close(buffer.double(), ref_grad, **TOLERANCE[dtype])


@interpreter
def test_interpreter_one_term_at_a_time():
    logits, target = _logits(5, 40)
    zeros = torch.zeros(5)
    grad_ce = torch.rand(5)
    ref_ce, ref_entropy, ref_grad = _reference(logits, target, grad_ce, zeros)
    buffer = logits.clone()
    ce, entropy = triton_loss.loss_rows(buffer, target, complement=False, grad_ce=grad_ce, max_block=16)
    assert entropy is None
    torch.testing.assert_close(ce.double(), ref_ce.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(buffer.double(), ref_grad, rtol=1e-5, atol=1e-6)
    grad_entropy = torch.rand(5)
    _, ref_entropy, ref_grad = _reference(logits, target, zeros, grad_entropy)
    buffer = logits.clone()
    ce, entropy = triton_loss.loss_rows(buffer, target, ce=False, grad_entropy=grad_entropy, max_block=16)
    assert ce is None
    torch.testing.assert_close(entropy.double(), ref_entropy.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(buffer.double(), ref_grad, rtol=1e-5, atol=1e-6)


@interpreter
def test_interpreter_a_non_finite_target_logit_makes_its_row_nan():
    logits, target = _logits(3, 20)
    for bad in (float("nan"), float("inf"), float("-inf")):
        broken = logits.clone()
        broken[1, target[1]] = bad
        _, entropy = triton_loss.loss_rows(broken, target, max_block=8)
        assert torch.isfinite(entropy[[0, 2]]).all() and torch.isnan(entropy[1])


@interpreter
def test_interpreter_statistics_only_leave_the_logits_alone():
    logits, target = _logits(4, 20)
    buffer = logits.clone()
    triton_loss.loss_rows(buffer, target)
    assert torch.equal(buffer, logits)


@interpreter
def test_interpreter_extreme_and_excluded_logits():
    # Row 0: -inf classes are excluded (q = 0, zero gradient). Row 1: a confident row
    # where 1 - p_g rounds to 0 in float32. Row 2: the first blocks are all -inf.
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(3))
    logits[0, 3:9] = float("-inf")
    logits[1] *= 100
    logits[2, :16] = float("-inf")
    target = torch.tensor([0, 5, 17])
    ones = torch.ones(3)
    buffer = logits.clone()
    ce, entropy = triton_loss.loss_rows(buffer, target, grad_ce=ones, grad_entropy=ones, max_block=8)
    finite = torch.isfinite(logits)
    ref_entropy = []
    for row, g, keep in zip(logits.double(), target, finite):  # the textbook H over the finite classes only
        shifted_target = g - (~keep[:g]).sum()
        ref_entropy.append(complement_entropy_per_row(row[keep][None], shifted_target[None])[0])
    torch.testing.assert_close(entropy, torch.stack(ref_entropy).float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ce, F.cross_entropy(logits, target, reduction="none"), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(buffer).all()
    assert torch.count_nonzero(buffer[~finite]) == 0


@interpreter
def test_interpreter_chunked_op_with_the_triton_backend():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(9, 5, generator=g, requires_grad=True)
    weight = torch.randn(37, 5, generator=g, requires_grad=True)
    bias = torch.randn(37, generator=g, requires_grad=True)
    target = torch.randint(0, 37, (9,), generator=g)
    target[4] = -100
    params = (hidden, weight, bias)
    results = {}
    for backend in ("torch", "triton"):
        # Two outputs (recomputing backward) and one (gradients in the forward).
        ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, chunk_size=4, backend=backend)
        gce = linear_guided_complement_entropy(hidden, weight, target, bias, chunk_size=4, backend=backend)
        ce_only = linear_cross_entropy(hidden, weight, target, bias, chunk_size=4, backend=backend)
        results[backend] = (
            ce,
            comp,
            gce,
            ce_only,
            *torch.autograd.grad(ce + 2 * comp, params),
            *torch.autograd.grad(gce, params),
            *torch.autograd.grad(ce_only, params),
        )
    for ours, ref in zip(results["triton"], results["torch"]):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    # One chunk: the forward's logits are reused, and overwritten in place by the kernel;
    # a second backward must recompute them.
    ce, comp = linear_cross_entropy_and_complement(hidden, weight, target, bias, backend="triton")
    first = torch.autograd.grad(ce + 2 * comp, params, retain_graph=True)
    second = torch.autograd.grad(ce + 2 * comp, params)
    for a, b, ref in zip(first, second, results["torch"][4:7]):
        torch.testing.assert_close(a, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b, ref, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    logits, target = _logits(3, 5)
    with pytest.raises(TypeError, match="takes float32/float16/bfloat16"):
        triton_loss.loss_rows(logits.double(), target)
    with pytest.raises(ValueError, match="at least one of ce and complement"):
        triton_loss.loss_rows(logits, target, ce=False, complement=False)
    with pytest.raises(ValueError, match="term that is not computed"):
        triton_loss.loss_rows(logits, target, ce=False, grad_ce=torch.ones(3))
    with pytest.raises(ValueError, match=r"expects \(M, K\) logits and \(M,\) targets"):
        triton_loss.loss_rows(logits, target[:2])
    with pytest.raises(ValueError, match="contiguous rows"):
        triton_loss.loss_rows(logits.t(), torch.zeros(5, dtype=torch.long), grad_ce=torch.ones(5))
    if not triton_loss.INTERPRETED:
        with pytest.raises(RuntimeError, match="runs on CUDA tensors, or on CPU tensors in a process started with"):
            triton_loss.loss_rows(logits, target)


@pytest.mark.skipif(triton_loss.INTERPRETED, reason="the interpreter does not compile")
@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION is unset")
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_kernel_compiles_for_the_gpu(dtype):
    # Lowering to PTX for sm_90 runs on any machine: it catches code the interpreter
    # accepts but the compiler does not, without a GPU.
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {
        "logits_ptr": f"*{dtype}",
        "row_stride": "i64",
        "target_ptr": "*i64",
        "ce_ptr": "*fp32",
        "entropy_ptr": "*fp32",
        "grad_ce_ptr": "*fp32",
        "grad_entropy_ptr": "*fp32",
        "n_cols": "i32",
        "NEED_CE": "constexpr",
        "NEED_COMPLEMENT": "constexpr",
        "WRITE_GRAD": "constexpr",
        "BLOCK": "constexpr",
    }
    constants = {"NEED_CE": True, "NEED_COMPLEMENT": True, "WRITE_GRAD": True, "BLOCK": triton_loss.MAX_BLOCK}
    source = ASTSource(triton_loss._loss_rows_kernel, signature, constexprs=constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 32})
    assert ".entry _loss_rows_kernel" in compiled.asm["ptx"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k", [1000, 50257, 128256])
def test_cuda_kernel(dtype, k):
    logits, target = _logits(64, k, dtype=dtype, device="cuda")
    grad_ce, grad_entropy = torch.rand(64, device="cuda"), torch.rand(64, device="cuda")
    ref_ce, ref_entropy, ref_grad = _reference(logits, target, grad_ce, grad_entropy)
    buffer = logits.clone()
    ce, entropy = triton_loss.loss_rows(buffer, target, grad_ce=grad_ce, grad_entropy=grad_entropy)
    torch.testing.assert_close(ce.double(), ref_ce.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(entropy.double(), ref_entropy.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(buffer.double(), ref_grad, **TOLERANCE[dtype])
