"""Learning-rate schedulers under COT's manual optimization in Lightning.

In manual optimization Lightning steps no scheduler and drops the ``monitor``/``strict``
keys of scheduler dicts (with a warning), so ``CotModule`` keeps them here and steps
each scheduler itself: once per COT step (``interval="step"``, every ``frequency``
steps) or per epoch, ``ReduceLROnPlateau`` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

PLATEAU_KEYS = ("monitor", "strict")
Monitors = dict[int, tuple[str | None, bool]]  # id(scheduler) -> (monitor, strict)


def split_plateau_keys(config: Any, found: Monitors, monitor: str | None = None) -> Any:
    """Strip ``monitor``/``strict`` from the scheduler dicts of a ``configure_optimizers`` result,
    recording them in ``found`` by scheduler identity."""
    if isinstance(config, (list, tuple)):
        return type(config)(split_plateau_keys(item, found, monitor) for item in config)
    if not isinstance(config, dict):
        if isinstance(config, torch.optim.lr_scheduler.ReduceLROnPlateau):
            found[id(config)] = (monitor, True)
        return config
    if "optimizer" in config:  # {"optimizer": ..., "lr_scheduler": ..., "monitor": ...}
        rest = {k: v for k, v in config.items() if k not in PLATEAU_KEYS}
        if "lr_scheduler" in rest:
            rest["lr_scheduler"] = split_plateau_keys(rest["lr_scheduler"], found, config.get("monitor", monitor))
        return rest
    if "scheduler" in config:
        found[id(config["scheduler"])] = (config.get("monitor", monitor), config.get("strict", True))
        return {k: v for k, v in config.items() if k not in PLATEAU_KEYS}
    return config


def step_schedulers(trainer: Any, interval: str, count: int, monitors: Monitors, own: Mapping[str, Tensor]) -> None:
    """Step the schedulers of ``interval`` due at ``count`` (the COT step or the epoch number).

    ``own`` holds the module's values for this interval (the step's or the epoch's means),
    looked up before the Trainer's ``callback_metrics``."""
    for config in trainer.lr_scheduler_configs:
        if config.interval != interval or count % config.frequency:
            continue
        if not isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config.scheduler.step()
            continue
        monitor, strict = monitors.get(id(config.scheduler), (None, True))
        if monitor is None:
            raise ValueError(
                "ReduceLROnPlateau needs a metric: return it as {'scheduler': ..., 'monitor': 'train_loss'} "
                "(or 'cot_loss', or a logged metric such as 'val_loss') from configure_optimizers"
            )
        value = own[monitor] if monitor in own else trainer.callback_metrics.get(monitor)
        if value is None:
            if strict:
                available = sorted(set(own) | set(trainer.callback_metrics))
                raise ValueError(
                    f"ReduceLROnPlateau monitors {monitor!r}, which has not been logged; "
                    f"available: {available}. Log it, or set 'strict': False to skip the step."
                )
            continue
        config.scheduler.step(value)
