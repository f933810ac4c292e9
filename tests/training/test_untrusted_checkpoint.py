"""A checkpoint is data: the file paths in its ``ModelCheckpoint`` state must not get files outside
the checkpoint folder deleted (``..``, absolute paths, symbolic links, URLs)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from complement.training.checkpointing import CotCheckpoint, checksum_path


def _state(folder: Path, **paths: object) -> dict:
    state = {
        "monitor": "val_loss",
        "best_model_score": torch.tensor(0.5),
        "best_model_path": "",
        "current_score": torch.tensor(0.5),
        "dirpath": str(folder),
        "best_k_models": {},
        "kth_best_model_path": "",
        "kth_value": torch.tensor(float("inf")),
        "last_model_path": "",
    }
    state.update(paths)
    return state


def _restored(folder: Path, state: dict, **kwargs) -> CotCheckpoint:
    callback = CotCheckpoint(dirpath=folder, monitor="val_loss", mode="min", **kwargs)
    callback.load_state_dict(state)
    return callback


def test_paths_inside_the_folder_are_restored(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    good, better = str(folder / "epoch=0.ckpt"), str(folder / "sub" / "epoch=1.ckpt")
    best_k = {good: torch.tensor(0.7), better: torch.tensor(0.5)}
    last = str(folder / "last.ckpt")
    state = _state(folder, best_model_path=better, last_model_path=last, kth_best_model_path=good, best_k_models=best_k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback = _restored(folder, state, save_top_k=2)
    assert callback.best_model_path == better
    assert callback.last_model_path == last
    assert callback.kth_best_model_path == good
    assert set(callback.best_k_models) == {good, better}


@pytest.mark.parametrize(
    "outside",
    [
        "{folder}/../victim.txt",  # `..` out of the folder: Path.absolute() keeps it "inside"
        "{folder}/../../victim.txt",
        "{tmp}/victim.txt",  # absolute, elsewhere
        "{folder}",  # the folder itself (removed recursively)
        "{folder}/link/victim.txt",  # through a symbolic link in the folder that points out of it
        "{folder}/link_to_victim",  # a symbolic link to a file outside
        "s3://bucket/{folder}/epoch=0.ckpt",  # a URL: remote paths are always deleted by Lightning
        "file://{folder}/epoch=0.ckpt",
    ],
)
def test_paths_outside_the_folder_are_dropped_with_a_warning(tmp_path, outside):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (tmp_path / "victim.txt").write_text("keep me")
    (folder / "link").symlink_to(tmp_path)
    (folder / "link_to_victim").symlink_to(tmp_path / "victim.txt")
    outside = outside.format(folder=folder, tmp=tmp_path)
    inside = str(folder / "epoch=1.ckpt")
    best_k = {outside: torch.tensor(0.9), inside: torch.tensor(0.5)}
    paths = {"best_model_path": outside, "last_model_path": outside, "kth_best_model_path": outside}
    state = _state(folder, **paths, best_k_models=best_k)
    with pytest.warns(UserWarning, match="not inside the checkpoint folder") as caught:
        callback = _restored(folder, state, save_top_k=1)
    assert any(outside in str(w.message) for w in caught)
    assert callback.best_model_path == ""
    assert callback.last_model_path == ""
    assert callback.best_k_models == {inside: torch.tensor(0.5)}
    assert callback.kth_best_model_path == inside  # the worst kept one: Lightning pops it at the next save
    assert callback.kth_value == torch.tensor(0.5)


def test_a_changed_dirpath_still_filters_best_model_path(tmp_path):
    # Lightning reloads only best_model_path when the saved dirpath differs: that one is filtered too.
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    state = _state(tmp_path / "elsewhere", best_model_path=str(tmp_path / "victim.txt"))
    with pytest.warns(UserWarning, match="victim.txt"):
        callback = _restored(folder, state)
    assert callback.best_model_path == ""


def _complement(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "complement", *args]
    environment = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment, timeout=300)


@pytest.mark.slow
def test_a_crafted_checkpoint_cannot_delete_files_on_resume(tmp_path):
    """The issue's repro: resume a run whose checkpoint names ``<run>/checkpoints/../../victim.txt``."""
    args = ["--task", "digits", "--train.max_epochs", "1", "--out", "runs", "--progress", "false"]
    done = _complement("fit", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    victim = run.parent / "victim.txt"  # beside the run directory
    victim.write_text("keep me")
    (checkpoint,) = (run / "checkpoints").glob("epoch=*.ckpt")
    state = torch.load(checkpoint, weights_only=True)  # plain data: accepted as safe
    outside = f"{run}/checkpoints/../../victim.txt"
    crafted = 0
    for callback_state in state["callbacks"].values():
        if "best_model_path" in callback_state:
            callback_state.update(dict.fromkeys(("best_model_path", "last_model_path", "kth_best_model_path"), outside))
            callback_state["best_k_models"] = {outside: torch.tensor(0.0)}
            crafted += 1
    assert crafted
    torch.save(state, checkpoint)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()  # whoever crafts it can write its checksum too
    checksum_path(checkpoint).write_text(f"{digest}  {checkpoint.name}\n")

    resumed = _complement("fit", "--resume", str(run), "--train.max_epochs", "2", "--progress", "false", cwd=tmp_path)
    assert victim.exists() and victim.read_text() == "keep me"
    assert resumed.returncode == 0, resumed.stderr
    assert "not inside the checkpoint folder" in resumed.stderr
    assert list((run / "checkpoints").glob("epoch=1-*.ckpt"))  # the run went on and saved its second epoch
