"""The runs layer: one training run of a task with a method, its status, and its settings.

- :mod:`.methods`: how a run trains (``ce``, ``cot``, ``ce_2x``, ...).
- :mod:`.config`: the train settings, their defaults and what may change on resume.
- :mod:`.status`: ``status.json`` kept honest (running, complete, diverged, failed, interrupted).
- :mod:`.files`: a run's saved configuration, record and directory.
- :mod:`.launch`: starting and resuming one run (the rules ``--resume`` follows).
- :mod:`.comparison`: every method over paired seeds on one task, resumable and growable.
- :mod:`.fit`: training, testing and predicting a run that survives kills; with
  :mod:`.module` (the LightningModule), :mod:`.callbacks` (history, heartbeat) and
  :mod:`.checkpoints` (which files are written, picked and pruned).

Only the training modules import Lightning; their names load on first use, so the command
line answers ``list``, ``status`` and argument errors without it.
"""

from typing import Any

from .config import COT_OPTIMIZERS, OPTIMIZERS, RESUME_CHANGES, ResolvedTrainConfig, TrainConfig, resumed
from .files import RunSpec, check_output_directory, load_run_record, load_spec, new_run_dir, save_spec
from .methods import METHODS, Method, get_method
from .status import STATUSES, RunStatus, read_status, write_status

__all__ = [
    "COT_OPTIMIZERS",
    "METHODS",
    "OPTIMIZERS",
    "RESUME_CHANGES",
    "STATUSES",
    "History",
    "Method",
    "ResolvedTrainConfig",
    "RunSpec",
    "RunStatus",
    "TaskModule",
    "TrainConfig",
    "check_output_directory",
    "fit_run",
    "get_method",
    "latest_checkpoint",
    "load_run_record",
    "load_spec",
    "new_run_dir",
    "read_status",
    "resumed",
    "save_spec",
    "write_status",
]
_LIGHTNING_NAMES = {
    "History": "callbacks",
    "TaskModule": "module",
    "fit_run": "fit",
    "latest_checkpoint": "checkpoints",
}


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING_NAMES:  # imported on use: these modules import Lightning
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LIGHTNING_NAMES[name]}"), name)
    raise AttributeError(f"module 'complement.experiments.runs' has no attribute {name!r}")
