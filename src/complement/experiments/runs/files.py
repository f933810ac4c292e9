"""A run's files that need no training library: its saved configuration, its record and
its directory (the CLI reads and checks these before importing Lightning)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..._atomic import write_json
from ..report.records import RunRecord
from .config import ResolvedTrainConfig, RobustSettings

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to rebuild a run, as saved in its ``config.json``."""

    task: str
    method: str
    seed: int
    train: ResolvedTrainConfig
    task_options: dict[str, Any] = field(default_factory=dict)
    threads: int | str = "auto"  # the setting (runs/threads.py)
    threads_used: int | None = None  # what the run resolved it to, recorded when it starts
    robust: RobustSettings | None = None  # the adversarial evaluation after training (runs/robust.py), if any

    def to_dict(self) -> dict[str, Any]:
        robust = None if self.robust is None else self.robust.to_dict()
        return {**asdict(self), "train": self.train.to_dict(), "robust": robust}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> RunSpec:
        try:
            train = ResolvedTrainConfig.from_saved(dict(data["train"]), where)
            return cls(
                data["task"], data["method"], int(data["seed"]), train, dict(data.get("task_options") or {}),
                data.get("threads", "auto"), data.get("threads_used"),
                RobustSettings.from_saved(data.get("robust"), where),
            )  # fmt: skip
        except (KeyError, TypeError) as error:
            raise ValueError(f"{where}: not a run configuration of this version of complement ({error})") from None


def save_spec(run_dir: Path, spec: RunSpec) -> None:
    write_json(Path(run_dir) / CONFIG_FILE, spec.to_dict())


def load_spec(run_dir: Path) -> RunSpec:
    path = Path(run_dir) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{run_dir} is not a run directory (no {CONFIG_FILE}); pass a directory made by fit"
        ) from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the run cannot be rebuilt from it") from None
    return RunSpec.from_dict(data, str(path))


def load_run_record(run_dir: Path) -> RunRecord:
    return RunRecord.from_dict(json.loads((Path(run_dir) / "record.json").read_text()))


def check_output_directory(parent: Path) -> None:
    """``parent`` can hold new run directories: it is (or can become) a writable directory."""
    parent = Path(parent)
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"--out {parent}: {existing} is a file, not a directory; pass a directory")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {parent}: {existing} is not writable; pass a directory you can write to")


def new_run_dir(parent: Path, name: str) -> Path:
    """A directory that did not exist before: never reuse (and so overwrite) an earlier run's."""
    check_output_directory(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"--out {parent}: cannot create it ({error.strerror}); pass a directory you can write to"
        ) from None
    for suffix in [""] + [f"-{i}" for i in range(2, 1000)]:
        candidate = parent / f"{name}{suffix}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {parent}")
