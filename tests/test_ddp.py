"""DDP through Lightning's own strategy, 2 CPU processes on gloo, equals one process on the global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny import batches_of, make_data, make_model, make_optimizers, reference_loop


@pytest.mark.slow
def test_ddp_two_processes_match_single_process_on_global_batch(tmp_path):
    out = tmp_path / "params.pt"
    env = {**os.environ, "PL_DISABLE_FORK": "1"}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("ddp_cot.py")), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_params = torch.load(out)
    x, y = make_data(n=32)
    reference = make_model()
    optimizers = make_optimizers(reference, "two")
    for _ in range(2):
        # global batch = 4 per process x 2 processes; rank r holds samples r, r+2, ... of each 8
        reference_loop(reference, optimizers, batches_of(x, y, 8), "alternate")
    for name, p in reference.named_parameters():
        torch.testing.assert_close(ddp_params[name], p.detach(), atol=1e-10, rtol=0)
