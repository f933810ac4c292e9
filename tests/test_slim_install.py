"""The library imports and trains without the harness's dependencies (the ``cli`` extra) or
Lightning / Transformers; the front ends and the CLI say which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HARNESS_ONLY = ("lightning", "pytorch_lightning", "jsonargparse", "matplotlib", "scipy", "yaml", "transformers")

LIBRARY_USE = """
import sys, torch
import complement
from complement import complement_entropy
from complement.training import CotStep
torch.manual_seed(0)
model = torch.nn.Linear(4, 3)
step = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1))
x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
logs = step.step((x, y))
assert set(logs) >= {"train_loss", "cot_loss"}, logs
float(complement_entropy(model(x), y))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("library ok")
"""
METRICS_USE = """
from complement import metrics
import torch
print(float(metrics.negative_log_likelihood(torch.randn(8, 3), torch.randint(0, 3, (8,)))))
"""


def _site_without(blocked: tuple[str, ...], folder: Path) -> Path:
    """This venv's site-packages as symlinks, minus ``blocked`` packages: as if they were not installed."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    folder.mkdir()
    for entry in site.iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower().lstrip("_")
        if top not in blocked and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def _run(code: str, python: str = sys.executable, path: str = "") -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter without site (-S): only ``path`` and the source tree are importable."""
    return subprocess.run([python, "-S", "-c", f"BLOCKED = {HARNESS_ONLY!r}\n" + code], capture_output=True,
                          text=True, cwd=ROOT, timeout=300,
                          env={"PYTHONPATH": f"{ROOT / 'src'}:{path}", "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_library_imports_and_trains_without_the_harness_dependencies(tmp_path):
    site = _site_without(HARNESS_ONLY, tmp_path / "site")
    result = _run(LIBRARY_USE, path=str(site))
    assert result.returncode == 0 and "library ok" in result.stdout, result.stderr[-3000:]
    result = _run(METRICS_USE, path=str(site))  # torchmetrics (the train extra) without matplotlib
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_check_itself_catches_a_harness_import(tmp_path):
    """The filtered site really lacks the harness's packages (so the test above can fail)."""
    site = _site_without(HARNESS_ONLY, tmp_path / "site")
    result = _run("import complement.experiments.cli", path=str(site))
    assert result.returncode != 0 and "jsonargparse" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_library_in_a_venv_with_torch_and_numpy_only(tmp_path):
    """A real virtual environment holding torch and numpy only: the library imports and trains there."""
    venv = tmp_path / "slim"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    spec = f"torch=={torch.__version__.split('+')[0]}"
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", spec, "numpy"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert pip.returncode == 0, f"could not install {spec} into a fresh venv: {pip.stderr[-2000:]}"
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    assert not [p for p in HARNESS_ONLY if f"\n{p}==" in "\n" + listed.lower()], listed
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    result = _run(LIBRARY_USE, python=python, path=site)
    assert result.returncode == 0 and "library ok" in result.stdout, result.stderr[-3000:]
