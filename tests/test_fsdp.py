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

SCRIPT = Path(__file__).with_name("fsdp_cot.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(out: Path, *args: str, world: int, expect_failure: bool = False) -> str:
    if world == 1:
        command = [sys.executable, str(SCRIPT), str(out), *args]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={world}"]
        command = [*launcher, "--master-addr=127.0.0.1", f"--master-port={free_port()}", str(SCRIPT), str(out), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
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


@pytest.mark.slow
@pytest.mark.parametrize("mode,optimizers,head", CASES)
def test_two_sharded_processes_equal_one_process_on_the_global_batch(tmp_path, mode, optimizers, head):
    run(tmp_path / "one.pt", mode, optimizers, head, world=1)
    run(tmp_path / "two.pt", mode, optimizers, head, world=2)
    assert_same(tmp_path / "two.pt", tmp_path / "one.pt")


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
