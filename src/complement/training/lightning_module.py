"""COT for Lightning 2.x: a ``LightningModule`` base class on manual optimization.

Lightning 2.0 removed ``training_step(..., optimizer_idx)``, which the COT blog used
for its two steps per batch. ``CotModule`` does the two steps with manual
optimization and handles what that breaks upstream::

    class Classifier(CotModule):
        def __init__(self):
            super().__init__(mode="alternate", num_classes=10)
            self.net = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.net(x)                     # class-last logits

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)   # shared by both steps

- ``configure_optimizers`` returns one optimizer (shared by both steps) or two
  (CE, complement; e.g. the authors' two SGDs), with schedulers in any of Lightning's
  formats. Schedulers are stepped here, once per COT step (``interval="step"``) or per
  epoch, including ``ReduceLROnPlateau`` on ``train_loss``/``cot_loss`` or a logged metric.
- Batches are ``(inputs, target)``; override :meth:`logits_and_target` for others.
- Gradient accumulation and clipping are arguments of the module: the Trainer's flags
  for them are refused in manual optimization. Clipping runs in
  ``on_before_optimizer_step``, after the AMP scaler has unscaled the gradients, so
  ``16-mixed`` clips real gradients (upstream Lightning #18089 clips scaled ones).
  Subclasses overriding that hook must call ``super()``.
- ``trainer.global_step`` counts COT steps, not optimizer steps: the complement step
  is not counted, so ``max_steps``, step-interval checkpoints and schedulers count
  batches (per accumulation group) as in plain CE training (upstream #17958 doubles them).
- Checkpoints carry both optimizers, the schedulers, the loop counters (Lightning)
  and the RNG states (here), so resuming at an epoch boundary replays the same run.
- Logging: each COT step's ``train_loss``/``cot_loss`` as ``*_step`` (progress bar) on the
  Trainer's ``log_every_n_steps``, and at the end of each epoch their means over all
  kept targets as ``*_epoch`` with ``train_acc`` (summed over DDP ranks), before the
  epoch-end validation. The plain names hold the epoch means for callbacks. Subclasses
  overriding ``on_train_epoch_start``/``on_train_epoch_end`` must call ``super()``.
- DDP/FSDP: use Lightning's strategies (``Trainer(strategy="ddp", devices=N)``).
"""

from __future__ import annotations

import functools
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from ._lightning_compat import checked_trainer_property, loggers_will_write, step_not_counted
from .objective import CotConfig, CotObjective, LinearLogits, LossFn, Phase, flatten_class_last
from .stepper import CotStepper, check_clipping, group_size, split_batch, split_optimizers

RNG_KEY = "complement_rng_states"


def _check_trainer_flags(trainer: pl.Trainer) -> None:
    if trainer.accumulate_grad_batches != 1:
        raise ValueError(
            f"Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches}) does not work with COT's manual "
            f"optimization. Pass CotModule(accumulate_grad_batches={trainer.accumulate_grad_batches}) instead and "
            "leave the Trainer's at 1."
        )
    if trainer.gradient_clip_val:
        raise ValueError(
            f"Trainer(gradient_clip_val={trainer.gradient_clip_val}) does not work with COT's manual optimization. "
            f"Pass CotModule(gradient_clip_val={trainer.gradient_clip_val}, gradient_clip_algorithm="
            f"{trainer.gradient_clip_algorithm or 'norm'!r}) instead."
        )


PLATEAU_KEYS = ("monitor", "strict")
PROGRESS_BAR = ("train_loss", "cot_loss")


class EpochStats:
    """An epoch's training logs, kept as device tensors (no per-step host sync).

    Each COT step's logged losses are weighted by the targets it trained on, so the
    epoch value is the mean over all kept targets; ``train_acc`` counts phase-1
    predictions. The per-step scalars are only collected; they are reduced every
    ``FLUSH_EVERY`` steps with one ``stack`` per quantity, because on CPU each small
    tensor op costs microseconds that would add up to a visible share of a small
    model's step. :meth:`compute` sums over DDP ranks in one collective."""

    FLUSH_EVERY = 256

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.groups = 0
        self.with_accuracy = True
        self._totals: dict[str, Tensor] = {}  # float64 sums of what has been flushed
        self._correct: list[Tensor] = []  # per batch
        self._kept: list[Tensor] = []  # per batch
        self._group_kept: list[Tensor] = []  # the batches of the open accumulation group
        self._weights: list[Tensor] = []  # per group: its kept targets
        self._logs: dict[str, list[Tensor]] = {}  # per group

    def add_batch(self, correct: Tensor | None, kept: Tensor) -> None:
        if correct is None:
            self.with_accuracy = False
        else:
            self._correct.append(correct)
        self._kept.append(kept)
        self._group_kept.append(kept)

    def add_group(self, logs: dict[str, Tensor]) -> None:
        kept = self._group_kept
        self._weights.append(kept[0] if len(kept) == 1 else torch.stack(kept).sum())
        self._group_kept = []
        for name, value in logs.items():
            self._logs.setdefault(name, []).append(value)
        self.groups += 1
        if len(self._weights) >= self.FLUSH_EVERY:
            self._flush()

    def _add(self, name: str, total: Tensor) -> None:
        total = total.double()
        self._totals[name] = self._totals[name] + total if name in self._totals else total

    def _flush(self) -> None:
        if self._weights:
            weights = torch.stack(self._weights).double()
            for name, values in self._logs.items():
                self._add(name, (torch.stack(values).double() * weights).sum())
        for name, values in (("correct", self._correct), ("kept", self._kept)):
            if values:
                self._add(name, torch.stack(values).sum())
        self._correct, self._kept, self._weights, self._logs = [], [], [], {}

    def compute(self, strategy) -> dict[str, Tensor]:
        if not self.groups:
            return {}
        self._flush()
        names = sorted(n for n in self._totals if n not in ("correct", "kept"))
        kept_total = self._totals["kept"]
        correct = self._totals.get("correct", torch.zeros_like(kept_total))
        totals = strategy.reduce(torch.stack([*(self._totals[n] for n in names), correct, kept_total]), reduce_op="sum")
        kept = totals[-1].clamp(min=1)
        means = {name: (totals[i] / kept).float() for i, name in enumerate(names)}
        if self.with_accuracy:
            means["train_acc"] = (totals[-2] / kept).float()
        return means


def split_plateau_keys(config: Any, found: dict[int, tuple[str | None, bool]], monitor: str | None = None) -> Any:
    """Strip ``monitor``/``strict`` from scheduler dicts of a configure_optimizers result.

    Lightning drops them (with a warning) in manual optimization; ``found`` records them
    by scheduler identity so CotModule can step ReduceLROnPlateau with the right value."""
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


class CotModule(pl.LightningModule):
    """Base class: subclass it, write ``forward`` and ``configure_optimizers``.

    Args:
        mode: ``"alternate"`` (the authors' two steps), ``"joint"`` or ``"off"`` (plain CE).
        complement_loss: a registered complement objective name or a callable ``(logits, target)``.
        complement_weight: multiplies the complement loss.
        ignore_index: target value that does not count.
        accumulate_grad_batches: micro-batches per COT step.
        gradient_clip_val / gradient_clip_algorithm: clipping of each step's gradients (``"norm"``/``"value"``).
        num_classes: enables torchmetrics (accuracy, macro precision, NLL, ECE, complement entropy).
        check_finite: raise on a NaN/inf loss instead of training on it.
        complement_loss_kwargs: keyword arguments of a named complement loss.
        primary_loss / primary_loss_kwargs: phase 1's loss (default cross-entropy); with ``mode="off"``
            this trains any registered loss alone (e.g. ``"guided_complement_entropy"``, ``"focal"``).
    """

    def __init__(
        self,
        mode: str = "alternate",
        complement_loss: str | LossFn = "complement_entropy",
        complement_weight: float = 1.0,
        ignore_index: int = -100,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        num_classes: int | None = None,
        check_finite: bool = True,
        complement_loss_kwargs: dict | None = None,
        primary_loss: str | LossFn = "cross_entropy",
        primary_loss_kwargs: dict | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        if not isinstance(accumulate_grad_batches, int) or accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be an integer >= 1; got {accumulate_grad_batches!r}")
        check_clipping(gradient_clip_val, gradient_clip_algorithm)
        self.objective = CotObjective(
            CotConfig(
                mode=mode,
                complement_loss=complement_loss,
                complement_weight=complement_weight,
                ignore_index=ignore_index,
                complement_loss_kwargs=complement_loss_kwargs,
                primary_loss=primary_loss,
                primary_loss_kwargs=primary_loss_kwargs,
            )
        )
        self.cot_accumulate_grad_batches = accumulate_grad_batches
        self.cot_gradient_clip_val = gradient_clip_val
        self.cot_gradient_clip_algorithm = gradient_clip_algorithm
        self._stepper = CotStepper(
            self.objective, self._forward_for_phase, self.manual_backward, self._optimizer_step, check_finite
        )
        self._group: list[Any] = []
        self._group_logs: dict[str, Tensor] = {}
        self._epoch_stats = EpochStats()
        self._epoch_means: dict[str, Tensor] = {}
        self.val_metrics = self.test_metrics = None
        if num_classes is not None:
            from ..metrics import classification_metrics

            self.val_metrics = classification_metrics(num_classes, ignore_index).clone(prefix="val_")
            self.test_metrics = classification_metrics(num_classes, ignore_index).clone(prefix="test_")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "configure_optimizers" in cls.__dict__:
            original = cls.__dict__["configure_optimizers"]

            @functools.wraps(original)
            def configure_optimizers(self):
                found: dict[int, tuple[str | None, bool]] = {}
                result = split_plateau_keys(original(self), found)
                self._plateau_monitors = found
                return result

            cls.configure_optimizers = configure_optimizers  # type: ignore[method-assign]

    # --- what users may override -----------------------------------------------------------

    def logits_and_target(self, batch: Any) -> tuple[Tensor, Tensor]:
        """Return class-last ``(logits, target)`` for a batch; the default takes ``(inputs, target)``."""
        inputs, target = split_batch(batch, "Override CotModule.logits_and_target(batch) to return (logits, target).")
        return self(inputs), target

    # --- Lightning plumbing ----------------------------------------------------------------

    trainer = checked_trainer_property(_check_trainer_flags)

    @property
    def mode(self) -> str:
        return self.objective.mode

    def _optimizers_by_phase(self):
        optimizers = self.optimizers()
        ce, complement = split_optimizers(optimizers if isinstance(optimizers, list) else [optimizers])
        return {Phase.CE: ce, Phase.COMPLEMENT: complement}

    def _forward_for_phase(self, batch: Any, phase: Phase) -> tuple[Tensor | LinearLogits, Tensor]:
        logits, target = self.logits_and_target(batch)
        if phase == Phase.CE:  # the epoch's accuracy is that of the logits CE trains on
            self._record_batch(logits, target)
        return logits, target

    def _record_batch(self, logits: Tensor | LinearLogits, target: Tensor) -> None:
        ignore_index = self.objective.ignore_index
        kept = (target != ignore_index).sum()
        if isinstance(logits, LinearLogits):  # unmaterialized logits: no accuracy, only the target count
            self._epoch_stats.add_batch(None, kept)
            return
        flat_logits, flat_target = flatten_class_last(logits.detach(), target)
        hits = flat_logits.argmax(-1) == flat_target
        if 0 <= ignore_index < flat_logits.shape[-1]:  # a prediction can equal ignore_index only then
            hits &= flat_target != ignore_index
        self._epoch_stats.add_batch(hits.sum(), kept)

    def _optimizer_step(self, phase: str) -> None:
        optimizer = self._optimizers_by_phase()[phase]
        if phase == Phase.COMPLEMENT:
            with step_not_counted(optimizer):
                optimizer.step()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.cot_gradient_clip_val is not None:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.cot_gradient_clip_val,
                gradient_clip_algorithm=self.cot_gradient_clip_algorithm,
            )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        size = group_size(batch_idx, self.cot_accumulate_grad_batches, self.trainer.num_training_batches)
        self._stepper.first_phase(batch, size)
        self._group.append(batch)
        if len(self._group) >= size:
            self._finish_group()
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_epoch_means()  # before the epoch-end validation, so callbacks there see them

    def _finish_group(self) -> None:
        logs = self._stepper.finish(self._group)
        self._epoch_stats.add_group(logs)
        self._group = []
        self._group_logs = logs
        if loggers_will_write(self.trainer):
            # Lightning's self.log costs ~1 ms per call on CPU (it walks its whole result
            # collection), so step values are logged only when the loggers will write them.
            for name, value in logs.items():
                self.log(
                    f"{name}_step", value, prog_bar=name in PROGRESS_BAR, on_step=True, on_epoch=False, batch_size=1
                )
        self._step_schedulers("step")

    def _log_epoch_means(self) -> None:
        means = self._epoch_stats.compute(self.trainer.strategy)
        self._epoch_stats.reset()
        self._epoch_means = means
        for name, value in means.items():
            forked = name if name == "train_acc" else f"{name}_epoch"
            self.log(forked, value, prog_bar=name in PROGRESS_BAR, on_step=False, on_epoch=True, batch_size=1)
            if forked != name:  # the plain name, for callbacks (ModelCheckpoint/EarlyStopping) as Lightning gives it
                self.log(name, value, logger=False, on_step=False, on_epoch=True, batch_size=1)

    def on_train_epoch_start(self) -> None:
        self._epoch_stats.reset()
        self._epoch_means = {}

    def on_train_epoch_end(self) -> None:
        if self._group:  # an iterable loader ended inside an accumulation group
            self._finish_group()
        if self._epoch_stats.groups:  # a loader of unknown length: the epoch ended only now
            self._log_epoch_means()
        self._step_schedulers("epoch")

    def _step_schedulers(self, interval: str) -> None:
        count = self.trainer.global_step if interval == "step" else self.current_epoch + 1
        for config in self.trainer.lr_scheduler_configs:
            if config.interval != interval or count % config.frequency:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                monitor, strict = getattr(self, "_plateau_monitors", {}).get(id(config.scheduler), (None, True))
                if monitor is None:
                    raise ValueError(
                        "ReduceLROnPlateau needs a metric: return it as {'scheduler': ..., 'monitor': 'train_loss'} "
                        "(or 'cot_loss', or a logged metric such as 'val_loss') from configure_optimizers"
                    )
                value = self._monitored(monitor, interval)
                if value is None:
                    if strict:
                        available = sorted(
                            set(self._group_logs) | set(self._epoch_means) | set(self.trainer.callback_metrics)
                        )
                        raise ValueError(
                            f"ReduceLROnPlateau monitors {monitor!r}, which has not been logged; "
                            f"available: {available}. Log it, or set 'strict': False to skip the step."
                        )
                    continue
                config.scheduler.step(value)
            else:
                config.scheduler.step()

    def _monitored(self, name: str | None, interval: str):
        own = self._group_logs if interval == "step" else self._epoch_means
        if name in own:
            return own[name]
        return self.trainer.callback_metrics.get(name)

    def _evaluate(self, batch: Any, stage: str) -> Tensor:
        logits, target = flatten_class_last(*self.logits_and_target(batch))
        loss = self.objective.cross_entropy(logits, target)
        batch_size = int((target != self.objective.ignore_index).sum())
        self.log(f"{stage}_loss", loss, on_epoch=True, prog_bar=stage == "val", batch_size=max(batch_size, 1))
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if metrics is not None:
            metrics.update(logits, target)
            self.log_dict(metrics, on_epoch=True, batch_size=max(batch_size, 1))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test")

    # --- exact resume ----------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Plain tensors and numbers only, so torch.load(weights_only=True) accepts the checkpoint.
        _, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
        assert isinstance(keys, np.ndarray)
        checkpoint[RNG_KEY] = {
            "torch": torch.get_rng_state(),
            "numpy": (torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gaussian)),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get(RNG_KEY)
        if states is not None:
            torch.set_rng_state(states["torch"])
            keys, position, has_gauss, cached_gaussian = states["numpy"]
            np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
            version, internal, gauss = states["python"]
            random.setstate((version, tuple(internal), gauss))
