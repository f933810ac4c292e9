"""CotModule under a plain Lightning Trainer, CotStep through its state_dict, and CotTrainer with
resume_from_checkpoint: each killed with SIGKILL mid-epoch, resumed, and compared with an
uninterrupted run bit for bit, parameters and the batches trained on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "resume_scripts.py"


def train(front_end: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), front_end, str(out), *extra], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("front_end,kill_at", [("lightning", 8), ("torch", 8), ("hf", 5)])
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path, front_end, kill_at):
    whole = train(front_end, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    first = train(front_end, tmp_path / "killed", "--kill-at", str(kill_at))
    assert first.returncode == -9, f"not killed: {first.returncode}\n{first.stderr[-3000:]}"
    assert not (tmp_path / "killed" / "result.pt").exists()
    second = train(front_end, tmp_path / "killed", "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    reference = torch.load(tmp_path / "whole" / "result.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "result.pt", weights_only=True)
    for ours, theirs in zip(resumed["params"], reference["params"]):
        assert torch.equal(ours, theirs)
    # The resumed process trained on exactly the batches the uninterrupted run had left: the loader's
    # position and the later epochs' shuffles were restored, not replayed from the start.
    seen, expected = resumed["seen"], reference["seen"]
    assert 0 < len(seen) < len(expected) and seen == expected[len(expected) - len(seen) :]
