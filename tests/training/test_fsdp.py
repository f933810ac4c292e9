"""FSDP2 (fully_shard) with the plain-PyTorch CotStep: 2 gloo processes on CPU equal one process
on the global batch, in every mode, with one or two optimizers, with materialized logits and
with the large-vocabulary head; a sharded checkpoint (torch.distributed.checkpoint) resumes exactly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "fsdp_cot.py"
LIGHTNING_SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "lightning_fsdp_cot.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(out: Path, *args: str, world: int, expect_failure: bool = False, env: dict | None = None) -> str:
    if world == 0:  # the Lightning script launches its own processes
        command = [sys.executable, str(LIGHTNING_SCRIPT), str(out), *args]
        return _run(command, out, expect_failure, env)
    return run_torchrun(SCRIPT, out, *args, world=world, expect_failure=expect_failure, env=env)


def run_torchrun(
    script: Path, out: Path, *args: str, world: int, expect_failure: bool = False, env: dict | None = None
) -> str:
    """``script OUT ARGS`` in one plain process (world 1) or ``world`` processes under torchrun."""
    if world == 1:
        command = [sys.executable, str(script), str(out), *args]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={world}"]
        command = [*launcher, "--master-addr=127.0.0.1", f"--master-port={free_port()}", str(script), str(out), *args]
    return _run(command, out, expect_failure, env)


def _run(command: list[str], out: Path, expect_failure: bool, env: dict | None) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=out.parent)
    assert (result.returncode != 0) == expect_failure, result.stderr[-4000:]
    return result.stderr


def assert_same(a: Path, b: Path, atol: float = 1e-10) -> None:
    ours, theirs = torch.load(a), torch.load(b)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], atol=atol, rtol=0, msg=name)


CASES = [
    ("alternate", "separate", "linear"),
    ("alternate", "shared", "logits"),
    ("joint", "shared", "linear"),
    ("off", "separate", "logits"),
    ("alternate", "shared", "linear"),
    ("joint", "separate", "logits"),
]


def run_cases(out: Path, cases: list[tuple[str, str, str]], world: int, env: dict | None = None) -> list[Path]:
    """Every case in one launch (one process start-up, one process group); the files of their parameters."""
    run_torchrun(SCRIPT, out, "--cases", *(":".join(case) for case in cases), world=world, env=env)
    return [out / f"{'-'.join(case)}.pt" for case in cases]


@pytest.mark.slow
def test_two_sharded_processes_equal_one_process_on_the_global_batch(tmp_path):
    # the six cases (mode, optimizers, head) in one launch each: process start-up is most of their cost
    ones = run_cases(tmp_path / "one", CASES, world=1)
    twos = run_cases(tmp_path / "two", CASES, world=2)
    for case, one, two in zip(CASES, ones, twos):
        try:
            assert_same(two, one)
        except AssertionError as error:
            raise AssertionError(f"case {case}: {error}") from None


@pytest.mark.slow
def test_a_sharded_checkpoint_resumes_exactly_with_both_optimizers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run(tmp_path / "a" / "whole.pt", "alternate", "separate", "linear", world=2)
    run(tmp_path / "b" / "resumed.pt", "alternate", "separate", "linear", "3", world=2)
    assert_same(tmp_path / "b" / "resumed.pt", tmp_path / "a" / "whole.pt", atol=0)


@pytest.mark.slow
def test_a_sharded_head_weight_given_as_a_tensor_is_refused_with_the_fix(tmp_path):
    stderr = run(tmp_path / "x.pt", "alternate", "shared", "weight", world=2, expect_failure=True)
    assert "sharded DTensor" in stderr and "LinearLogits(hidden, model.lm_head)" in stderr


LIGHTNING_CASES = [
    ("alternate", "separate", "linear"),
    ("joint", "shared", "logits"),
    ("off", "separate", "linear"),
]


@pytest.mark.slow
@pytest.mark.parametrize("mode,optimizers,head", LIGHTNING_CASES)
def test_lightning_model_parallel_strategy_equals_one_plain_process(tmp_path, mode, optimizers, head):
    """CotModule under ModelParallelStrategy (FSDP2 in configure_model), 2 CPU processes."""
    run(tmp_path / "one.pt", mode, optimizers, head, world=1)
    run(tmp_path / "lightning.pt", mode, optimizers, head, world=0)
    assert_same(tmp_path / "lightning.pt", tmp_path / "one.pt")


@pytest.mark.slow
def test_lightning_sharded_checkpoint_resumes_exactly(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    run(tmp_path / "whole.pt", "alternate", "separate", "linear", "2", world=0)
    run(tmp_path / "half.pt", "alternate", "separate", "linear", "1", f"save:{checkpoint}", world=0)
    assert (checkpoint / "meta.pt").exists()  # Lightning's distributed checkpoint folder, one shard per rank
    run(tmp_path / "resumed.pt", "alternate", "separate", "linear", "2", f"resume:{checkpoint}", world=0)
    assert_same(tmp_path / "resumed.pt", tmp_path / "whole.pt", atol=0)
    with pytest.raises(AssertionError):  # the checkpoint is from halfway: the test can tell
        assert_same(tmp_path / "half.pt", tmp_path / "whole.pt", atol=0)


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 NVIDIA GPUs")
@pytest.mark.parametrize("mode,optimizers,head", LIGHTNING_CASES)
def test_lightning_fsdp_strategy_on_two_gpus_equals_one_plain_process(tmp_path, mode, optimizers, head):
    run(tmp_path / "one.pt", mode, optimizers, head, world=1)
    run(tmp_path / "lightning.pt", mode, optimizers, head, world=0, env={"STRATEGY": "fsdp"})
    assert_same(tmp_path / "lightning.pt", tmp_path / "one.pt", atol=1e-9)


HF_SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "hf_distributed_cot.py"


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 NVIDIA GPUs")
@pytest.mark.parametrize("mode,head", [("alternate", "linear"), ("alternate", "fused"), ("joint", "logits")])
def test_hf_trainer_under_accelerate_fsdp_on_two_gpus_equals_one_process(tmp_path, mode, head):
    run_torchrun(HF_SCRIPT, tmp_path / "one.pt", mode, head, world=1, env={"ENGINE": "fsdp"})
    run_torchrun(HF_SCRIPT, tmp_path / "two.pt", mode, head, world=2, env={"ENGINE": "fsdp"})
    assert_same(tmp_path / "two.pt", tmp_path / "one.pt", atol=1e-5)
