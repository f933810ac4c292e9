"""What a pip user gets: the package's metadata and shipped files, and (slow) the built wheel in a fresh
virtual environment, first without extras, then with the ``cli`` extra running the main job with no clone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from complement.experiments.configs import resolve_config_args, shipped_config, shipped_configs
from tests.test_slim_install import HARNESS_ONLY, LIBRARY_USE

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


# --- metadata and shipped files ---------------------------------------------------------------------------


def test_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    assert PROJECT["license-files"] == ["LICENSE"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")], "PEP 639: no license classifiers"
    assert any(re.fullmatch(r"setuptools>=(7[7-9]|[89]\d)(\.\d+)*", r) for r in PYPROJECT["build-system"]["requires"])


def test_the_package_ships_its_types_and_configs():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["complement"] and (ROOT / "src/complement/py.typed").is_file()
    assert data["complement.experiments.configs"] == ["*.yaml"]
    assert {"cifar10_adversarial", "mnist", "mnist_noisy", "paper_cifar10", "tweets"} <= set(shipped_configs())
    # the repository's configs/ is the shipped folder itself, so the two never drift apart
    assert (ROOT / "configs").resolve() == (ROOT / "src/complement/experiments/configs").resolve()


def test_the_console_script_is_the_guarded_entry_point():
    assert PROJECT["scripts"] == {"complement": "complement.__main__:main"}


def test_every_extra_is_in_the_readme_install_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    for extra in PROJECT["optional-dependencies"]:
        assert f"`{extra}`" in section, f"README's install section does not describe the {extra!r} extra"


def test_dev_brings_the_packaging_and_docs_tools():
    dev = PROJECT["optional-dependencies"]["dev"]
    assert {Requirement(r).name for r in dev} >= {"build", "twine"}
    assert "docs" in Requirement(next(r for r in dev if r.startswith("complement["))).extras


def test_config_names_resolve_to_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no clone here: configs/mnist.yaml does not exist
    mnist = shipped_configs()["mnist"]
    for name in ("mnist", "mnist.yaml", "configs/mnist.yaml"):
        assert shipped_config(name) == mnist, name
    assert resolve_config_args(["compare", "--config", "mnist", "--seeds", "1"]) == [
        "compare", "--config", str(mnist), "--seeds", "1"]  # fmt: skip
    assert resolve_config_args(["compare", "--config=configs/mnist.yaml"]) == ["compare", f"--config={mnist}"]
    for other in ("nothing_shipped", "elsewhere/mnist.yaml", "/abs/mnist.yaml"):
        assert resolve_config_args(["compare", "--config", other]) == ["compare", "--config", other]
    (tmp_path / "mnist.yaml").write_text("seeds: 1\n")  # a file that exists is always the one read
    assert resolve_config_args(["compare", "--config", "mnist.yaml"]) == ["compare", "--config", "mnist.yaml"]


# --- the wheel in a fresh venv (slow) ---------------------------------------------------------------------


def _closure(requirements: list[Requirement], own: list[Requirement]) -> set[str]:
    """The installed distributions (of this venv) that ``requirements`` need, recursively.
    ``complement[...]`` inside them means the wheel's own requirements ``own`` with those extras."""
    seen: set[tuple[str, str]] = set()
    found: set[str] = set()
    todo = [(r, "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        extras = sorted(requirement.extras) or [""]
        if requirement.name == "complement":
            todo += [(r, e) for e in extras if ("complement", e) not in seen for r in own]
            seen |= {("complement", e) for e in extras}
            continue
        dist = metadata.distribution(requirement.name)
        name = dist.metadata["Name"]
        found.add(name)
        for e in extras:
            if (name, e) not in seen:
                seen.add((name, e))
                todo += [(Requirement(r), e) for r in dist.requires or []]
    return found


def _link_into(site: Path, names: set[str]) -> None:
    """Symlink the installed files of distributions ``names`` (this venv's) into ``site``: as if
    pip had installed them there, without copying torch's 1 GB or reaching an index."""
    for name in sorted(names):
        dist = metadata.distribution(name)
        assert dist.files, f"{name} has no RECORD to link from"
        tops = {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__") and f.suffix != ".pth"}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)


def _requirements_of(wheel: Path) -> list[Requirement]:
    """The wheel's ``Requires-Dist``."""
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(archive.read(info).decode())
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def _stderr_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


@pytest.mark.slow
def test_the_built_wheel_in_a_fresh_venv_slim_then_with_the_cli_extra(tmp_path):
    """``python -m build``, then a fresh venv: with torch and numpy only, the library imports and
    trains, and each entry point that needs an extra names it in one line; then with the wheel's
    ``cli`` extra, ``complement compare --config configs/mnist.yaml`` runs in a folder that is no clone.

    The venv's third-party packages are symlinks to this venv's (what pip would install, from the
    wheel's own metadata), and pip runs with ``--no-index``: the test needs no network, and a
    requirement missing from the links fails it instead of being downloaded."""
    dist = tmp_path / "dist"
    # --no-isolation: setuptools from this venv (the test must not need the index); the sdist is built
    # first and the wheel from it, so the wheel holds only what the sdist ships.
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = dist.glob("complement-*.whl")
    own = _requirements_of(wheel)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python, bindir = str(venv / "bin" / "python"), venv / "bin"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    work = tmp_path / "work"  # where the commands run: no clone, no source tree on the path
    work.mkdir()
    # PYTHONDONTWRITEBYTECODE: no .pyc written into this venv's packages through the links
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "MPLBACKEND": "Agg", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip

    def pip(*args: str) -> None:
        command = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"pip install {args}: {result.stdout[-2000:]}{result.stderr[-3000:]}"

    def run(*command: str, code: str | None = None) -> subprocess.CompletedProcess:
        argv = [python, "-c", code] if code is not None else list(command)
        return subprocess.run(argv, capture_output=True, text=True, cwd=work, env=env, timeout=600)

    # 1. torch and numpy only (and what they need), then the wheel without extras
    _link_into(site, _closure([r for r in own if r.marker is None], own))
    pip(str(wheel))
    listed = {d.metadata["Name"].lower() for d in metadata.distributions(path=[str(site)])}
    assert not listed & {"lightning", "jsonargparse", "matplotlib", "transformers", "torchmetrics"}, listed
    typed = "import importlib.resources as r; print('typed:', r.files('complement') / 'py.typed')"
    result = run(code=f"BLOCKED = {HARNESS_ONLY!r}\n{LIBRARY_USE}\n{typed}")
    assert result.returncode == 0 and "library ok" in result.stdout, result.stderr[-3000:]
    typed_file = Path(result.stdout.split("typed: ", 1)[1].strip())
    assert typed_file.is_file() and typed_file.is_relative_to(site), typed_file  # the wheel's, not the source tree's

    result = run("complement", "--help")
    assert result.returncode == 1 and "Traceback" not in result.stderr, (result.stdout, result.stderr)
    assert result.stderr.strip() == _stderr_line(result), f"more than one line: {result.stderr}"
    assert _stderr_line(result).startswith("complement: the command line needs the 'cli' extra: pip install")
    for module, extra in (("complement.lightning", "train"), ("complement.hf", "text")):
        result = run(code=f"import {module}")
        assert result.returncode == 1 and "During handling" not in result.stderr, result.stderr
        assert f"ModuleNotFoundError: {module} needs the '{extra}' extra" in _stderr_line(result), result.stderr
        assert f'pip install "complement[{extra}]"' in _stderr_line(result)

    # 2. the same venv with the cli extra: the README's main job, shortened, from the shipped config
    _link_into(site, _closure([Requirement("complement[cli]")], own))
    pip(f"{wheel}[cli]")
    result = run("complement", "compare", "--config", "configs/mnist.yaml", "--methods", "[ce, cot]", "--seeds", "1",
                 "--train.max_epochs", "1", "--progress", "false")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (report,) = (work / "runs").glob("compare-mnist-*/report.md")
    assert "cot" in report.read_text(encoding="utf-8")
    assert not (work / "configs").exists()


def test_the_venv_helpers_see_this_venvs_torch():
    """The slow test's links come from this venv's metadata; torch's RECORD must name its top folder."""
    closure = _closure([Requirement("torch"), Requirement("numpy")], [])
    assert {"torch", "numpy"} <= {name.lower() for name in closure}
    assert os.path.basename(str(metadata.distribution("torch").locate_file("torch"))) == "torch"
