"""A --config file or a command-line option is data: a ``{class_path: ..., init_args: ...}`` mapping in
``task_options`` (or anywhere else) must never be instantiated by the parser."""

from __future__ import annotations

import time

import pytest

from complement.experiments.cli import main
from complement.experiments.runs import comparison, launch


def _popen(marker) -> dict:
    return {"class_path": "subprocess.Popen", "init_args": {"args": f"touch {marker}", "shell": True}}


def _file_handler(marker) -> dict:  # creates its file as it is made: no race with a child process
    return {"class_path": "logging.FileHandler", "init_args": {"filename": str(marker)}}


def _flow(value) -> str:
    """YAML flow style (also JSON for these values) for ``--config`` files and ``--task_options``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str):
        return '"' + value + '"'
    return "true" if value is True else str(value)


def _never_made(marker, wait: float) -> bool:
    deadline = time.monotonic() + wait  # a Popen child would touch the marker asynchronously
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.05)
    return not marker.exists()


@pytest.mark.parametrize("command", ["fit", "compare"])
@pytest.mark.parametrize("spec, wait", [(_popen, 1.0), (_file_handler, 0.0)])
@pytest.mark.parametrize("where", ["config", "flag", "nested"])
def test_a_class_path_in_task_options_is_not_instantiated(tmp_path, capsys, command, spec, wait, where):
    marker = tmp_path / "pwned"
    options = {"x": spec(marker)}
    if where == "nested":  # deep inside lists and mappings
        options = {"x": {"y": [1, spec(marker)]}}  # type: ignore[dict-item]
    args = [command, "--out", str(tmp_path / "runs"), "--progress", "false"]
    if where == "flag":
        args += ["--task", "digits", "--task_options", _flow(options)]
    else:
        config = tmp_path / "config.yaml"
        config.write_text(f"task: digits\ntask_options: {_flow(options)}\n")
        args += ["--config", str(config)]
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 1
    assert "has no option(s) ['x']" in capsys.readouterr().err  # the task got the spec as data, and refused it
    assert _never_made(marker, wait)
    assert not (tmp_path / "runs").exists()


class _Stop(Exception):
    pass


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_task_options_take_plain_nested_values(monkeypatch, command):
    given = {}

    def capture(task, methods_or_method, seeds_or_seed, train, task_options, *args, **kwargs):
        given.update(task=task, task_options=task_options)
        raise _Stop

    monkeypatch.setattr(launch, "train_run", capture)
    monkeypatch.setattr(comparison, "compare", capture)
    spec = {"class_path": "subprocess.Popen", "init_args": {"args": "echo hi", "shell": True}}
    options = (
        "{label_noise: 0.2, data_path: my.csv, width: 3, few_shot: null, augment: true,"
        " sizes: [1, [2.5, {a: b}]], more: {c: [x, y]}, spec: " + _flow(spec) + "}"
    )
    with pytest.raises(SystemExit):  # main turns the stop into a one-line error
        main([command, "--task", "digits", "--task_options", options, "--task_options.lr_scale", "0.5"])
    assert given["task_options"] == {
        "label_noise": 0.2,
        "data_path": "my.csv",
        "width": 3,
        "few_shot": None,
        "augment": True,
        "sizes": [1, [2.5, {"a": "b"}]],
        "more": {"c": ["x", "y"]},
        "spec": spec,  # a mapping like any other
        "lr_scale": 0.5,  # a dotted option is typed as in YAML
    }
