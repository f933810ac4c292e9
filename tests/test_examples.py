"""The examples run offline as documented (tiny settings)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cot_bert.py"


@pytest.mark.slow
@pytest.mark.parametrize("frontend", ["lightning", "hf"])
def test_cot_bert_example_logs_both_losses(frontend, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--frontend",
            frontend,
            "--train-size",
            "32",
            "--max-steps",
            "2",
            "--batch-size",
            "16",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cot_loss" in result.stdout and "train_loss" in result.stdout
