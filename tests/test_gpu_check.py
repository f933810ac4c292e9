"""scripts/gpu_check.sh as far as a CPU machine can run it: the refusal, and the report it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_check_refuses_without_a_gpu_and_writes_nothing():
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    result = subprocess.run([str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "needs an NVIDIA GPU" in result.stderr
    assert (ROOT / "docs" / "benchmarks.md").read_text() == docs


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="checks the refusal on a machine without 2 GPUs")
def test_multi_gpu_check_refuses_without_two_gpus_and_writes_nothing():
    docs = (ROOT / "docs" / "benchmarks.md").read_text()
    result = subprocess.run([str(ROOT / "scripts" / "multi_gpu_check.sh")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "needs 2 or more NVIDIA GPUs" in result.stderr
    assert (ROOT / "docs" / "benchmarks.md").read_text() == docs


def test_report_section_from_pytest_junit_xml(tmp_path, monkeypatch):
    from benchmarks import _common, gpu_check_report

    cases = tmp_path / "test_cases.py"
    cases.write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert False\n"
        "@pytest.mark.skip(reason='no GPU')\n"
        "def test_skipped(): pass\n"
    )
    xml = tmp_path / "cuda.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(cases),
         "--junitxml", str(xml)],
        capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    outcomes = {test.split("::")[-1]: outcome for test, outcome, _ in gpu_check_report.outcomes(xml)}
    assert outcomes == {"test_ok": "passed", "test_bad": "FAILED", "test_skipped": "skipped"}
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n<!-- BEGIN other -->\nkept\n<!-- END other -->\n")
    monkeypatch.setattr(_common, "DOCS", docs)
    monkeypatch.setattr(
        sys, "argv", ["gpu_check_report.py", str(xml), "1", "0", "scripts/gpu_check.sh", "--device", "H1"]
    )
    gpu_check_report.main()
    text = docs.read_text()
    assert "kept" in text and "<!-- BEGIN gpu_check -->" in text
    assert "Device: H1" in text and "1 passed, 1 failed, 1 skipped (pytest exit status 1" in text
    # the multi-GPU script's section, beside it
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--section", "multi_gpu_check", "--title", "Multi-GPU check"])
    gpu_check_report.main()
    text = docs.read_text()
    assert "<!-- BEGIN gpu_check -->" in text and "<!-- BEGIN multi_gpu_check -->" in text
    assert "## Multi-GPU check" in text
