"""Import paths of 0.1 that moved in 0.2 keep working, with a warning naming the new path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MOVED = [
    ("complement.tasks", "build_task", "complement.experiments.tasks"),
    ("complement.tasks", "available_tasks", "complement.experiments.tasks"),
    ("complement.runs", "fit_run", "complement.experiments.runs"),
    ("complement.runs", "RunSpec", "complement.experiments.runs"),
    ("complement.report", "write_report", "complement.experiments.report"),
    ("complement.report", "RunRecord", "complement.experiments.report"),
    ("complement.cli", "main", "complement.experiments.cli"),
]


@pytest.mark.parametrize("old,name,new", MOVED, ids=[f"{o}.{n}" for o, n, _ in MOVED])
def test_old_path_warns_and_gives_the_same_object(old, name, new):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}.*import {name} from {new}"):
        found = getattr(module, name)
    assert found is getattr(importlib.import_module(new), name)


def test_old_path_refuses_a_name_that_never_existed():
    import complement.tasks

    with pytest.warns(DeprecationWarning), pytest.raises(AttributeError):
        complement.tasks.no_such_name  # noqa: B018


@pytest.mark.parametrize("module", ["complement", "complement.cli"])
def test_python_dash_m_runs_the_command_line(module):
    result = subprocess.run([sys.executable, "-m", module, "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tasks:" in result.stdout and "methods:" in result.stdout
    assert ("deprecated" in result.stderr) == (module == "complement.cli")
