"""The library imports and trains without the harness's dependencies (the ``cli`` extra) or
Lightning / Transformers; the front ends and the CLI say which extra to install.

These run on this venv's site-packages with the harness's packages filtered out; the real slim
install (the built wheel in a fresh venv with torch and numpy only) is tests/test_packaging.py's
slow test, which also runs the ``cli`` extra's main job there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


ENTRY_POINTS = """
import importlib
for module in ("complement.lightning", "complement.hf"):
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        print(f"{module}: {error} | {error.name} | {error.__suppress_context__}")
from complement.__main__ import main
try:
    main(["--help"])
except SystemExit as error:
    print(f"complement: {error.code}")
"""


def test_each_entry_point_names_its_extra_in_one_line(tmp_path):
    """Without Lightning, Transformers and the harness's packages, ``complement.lightning``,
    ``complement.hf`` and the ``complement`` command each say which extra to install, in one line.
    (The built wheel in a fresh venv, the real install: tests/test_packaging.py, slow.)"""
    site = _site_without(HARNESS_ONLY, tmp_path / "site")
    result = _run(ENTRY_POINTS, path=str(site))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "complement.lightning: complement.lightning needs the 'train' extra: pip install \"complement[train]\" "
        "(no module named 'lightning') | lightning | True",
        "complement.hf: complement.hf needs the 'text' extra: pip install \"complement[text]\" "
        "(no module named 'transformers') | transformers | True",
        "complement: complement: the command line needs the 'cli' extra: pip install \"complement[cli]\" "
        "(no module named 'jsonargparse')",
    ], lines


def test_a_missing_module_of_complement_itself_is_a_bug_not_an_extra():
    from complement._extras import is_extra_missing, missing_extra

    ours = ModuleNotFoundError("No module named 'complement.nothing'", name="complement.nothing")
    assert not is_extra_missing(ours) and missing_extra(ours, "train", "complement.lightning") is ours
    theirs = ModuleNotFoundError("No module named 'lightning.pytorch'", name="lightning.pytorch")
    error = missing_extra(theirs, "train", "complement.lightning")
    assert error is not theirs and error.name == "lightning.pytorch" and "\n" not in str(error)
    assert 'pip install "complement[train]"' in str(error)
