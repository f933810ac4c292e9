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
  ``training_step`` is CotModule's: a subclass that overrides it must call
  ``super().training_step(batch, batch_idx)``, or no COT step runs (it is refused).
- Gradient accumulation and clipping are arguments of the module: the Trainer's flags
  for them are refused in manual optimization. Clipping runs in
  ``on_before_optimizer_step``, after the AMP scaler has unscaled the gradients, so
  ``16-mixed`` clips real gradients (upstream Lightning #18089 clips scaled ones).
  Subclasses overriding that hook must call ``super()``.
- ``trainer.global_step`` counts COT steps, not optimizer steps: the complement step
  is not counted, so ``max_steps``, step-interval checkpoints and schedulers count
  batches (per accumulation group) as in plain CE training (upstream #17958 doubles them).
- Checkpoints carry both optimizers, the schedulers, the loop counters (Lightning),
  and here every RNG state and the epoch's running statistics, so a run resumed from
  any checkpoint, mid-epoch included, is the run it would have been: use a resumable
  loader (:func:`complement.training.resumable_loader`), which Lightning saves and
  restores with the checkpoint. Lightning writes step-interval checkpoints after the
  batch that completes an accumulation group, where nothing is pending.
- A loader of unknown length may end inside an accumulation group: that last group is
  stepped with its gradients rescaled to the mean over the batches it had.
- Logging: each COT step's ``train_loss``/``cot_loss`` as ``*_step`` (progress bar) on the
  Trainer's ``log_every_n_steps``, and at the end of each epoch their means over all
  kept targets as ``*_epoch`` with ``train_acc`` (summed over DDP ranks), before the
  epoch-end validation. **``cot_loss`` is negative by construction** (``-H / Z``: it falls
  as the wrong classes flatten); beside it ``cot_entropy`` is the mean complement entropy
  as a fraction of its maximum, 0 to 1, higher is flatter. The plain names hold the epoch
  means for callbacks. Subclasses overriding ``on_train_epoch_start``/``on_train_epoch_end`` must call ``super()``.
- BatchNorm running statistics are updated by both forwards of a COT step (as in the
  authors' code): a model in train mode sees each batch twice.
- DDP/FSDP: use Lightning's strategies (``Trainer(strategy="ddp", devices=N)``).
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Any

import lightning.pytorch as pl
from torch import Tensor, nn

from ._lightning_compat import checked_trainer_property, is_last_batch, loggers_will_write, step_not_counted
from .adversarial import AdversarialTraining, Adversary
from .epoch_stats import EpochStats
from .lightning_schedulers import Monitors, split_plateau_keys, step_schedulers
from .objective import CotConfig, CotObjective, LinearLogits, LossFn, Phase, flatten_class_last
from .rng import rng_state, set_rng_state
from .stepper import CotStepper, check_clipping, check_optimizers_train, group_size, split_batch, split_optimizers

RNG_KEY = "complement_rng_states"
EPOCH_STATS_KEY = "complement_epoch_stats"
PROGRESS_BAR = ("train_loss", "cot_loss")


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


def _wrap_configure_optimizers(original):
    """Record the plateau monitors of the outermost call only: a subclass returning
    ``super().configure_optimizers()`` must not lose the parent's ``monitor``."""

    @functools.wraps(original)
    def configure_optimizers(self):
        if getattr(self, "_configuring_optimizers", False):  # an inner super() call
            return original(self)
        self._configuring_optimizers = True
        try:
            result = original(self)
        finally:
            self._configuring_optimizers = False
        found: Monitors = {}
        result = split_plateau_keys(result, found)
        self._plateau_monitors = found
        return result

    return configure_optimizers


def _wrap_training_step(original):
    """Refuse a ``training_step`` that does not run CotModule's (the blog's ``CotBert`` pattern)."""

    @functools.wraps(original)
    def training_step(self, batch, batch_idx, *args, **kwargs):
        self._cot_step_ran = False
        result = original(self, batch, batch_idx, *args, **kwargs)
        if not self._cot_step_ran:
            raise TypeError(
                f"{type(self).__name__}.training_step did not call CotModule.training_step, so no COT step ran and "
                "nothing was trained. CotModule does both steps itself: delete your training_step and return "
                "(logits, target) from logits_and_target(batch) (or forward(inputs)); to add work per batch, call "
                "super().training_step(batch, batch_idx) from yours."
            )
        return result

    return training_step


class CotModule(pl.LightningModule):
    """Base class: subclass it, write ``forward`` and ``configure_optimizers``.

    Args:
        mode: ``"alternate"`` (the authors' two steps), ``"joint"`` or ``"off"`` (plain CE).
        complement_loss: a registered complement objective name or a callable ``(logits, target)``.
        complement_weight: multiplies the complement loss.
        ignore_index: target value that does not count.
        accumulate_grad_batches: micro-batches per COT step.
        gradient_clip_val: clip each step's gradients to this norm or value (``None``: no clipping).
        gradient_clip_algorithm: ``"norm"`` or ``"value"``.
        num_classes: enables torchmetrics (accuracy, macro precision, NLL, ECE, complement entropy).
        check_finite: raise on a NaN/inf loss instead of training on it.
        complement_loss_kwargs: keyword arguments of a named complement loss.
        primary_loss: phase 1's loss (default cross-entropy); with ``mode="off"`` this trains any
            registered loss alone (e.g. ``"guided_complement_entropy"``, ``"focal"``).
        primary_loss_kwargs: keyword arguments of a named primary loss.
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
        adversarial: AdversarialTraining | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        if "pytorch_lightning" in sys.modules:
            warnings.warn(
                "pytorch_lightning is imported: CotModule is a LightningModule of the `lightning` package "
                "(lightning.pytorch), and a pytorch_lightning.Trainer refuses it ('model must be a LightningModule'). "
                "Use `import lightning.pytorch as pl` and `pl.Trainer`.",
                UserWarning,
                stacklevel=2,
            )
        if isinstance(accumulate_grad_batches, bool) or not isinstance(accumulate_grad_batches, int) or (
            accumulate_grad_batches < 1
        ):  # fmt: skip
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
            self.objective,
            self._forward_for_phase,
            self.manual_backward,
            self._optimizer_step,
            check_finite,
            rescale=self._rescale_gradients,
            adversary=None if adversarial is None else Adversary(adversarial, self),
        )
        self._group: list[Any] = []
        self._group_logs: dict[str, Tensor] = {}
        self._epoch_stats = EpochStats()
        self._epoch_means: dict[str, Tensor] = {}
        self._plateau_monitors: Monitors = {}
        self._restored_stats = False
        self._after_last_batch = False  # between the epoch's last batch and its end
        self.val_metrics = self.test_metrics = None
        if num_classes is not None:
            from ..metrics import classification_metrics

            self.val_metrics = classification_metrics(num_classes, ignore_index).clone(prefix="val_")
            self.test_metrics = classification_metrics(num_classes, ignore_index).clone(prefix="test_")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "configure_optimizers" in cls.__dict__:
            cls.configure_optimizers = _wrap_configure_optimizers(cls.__dict__["configure_optimizers"])  # type: ignore[method-assign]
        if "training_step" in cls.__dict__:
            cls.training_step = _wrap_training_step(cls.__dict__["training_step"])  # type: ignore[method-assign]

    # --- what users may override -----------------------------------------------------------

    def logits_and_target(self, batch: Any) -> tuple[Tensor | LinearLogits, Tensor]:
        """Return class-last ``(logits, target)`` for a batch; the default takes ``(inputs, target)``."""
        inputs, target = split_batch(batch, "Override CotModule.logits_and_target(batch) to return (logits, target).")
        return self(inputs), target

    @property
    def last_step_logs(self) -> dict[str, Tensor]:
        """The last COT step's mean losses (``train_loss``, and ``cot_loss`` unless mode is ``off``)."""
        return dict(self._group_logs)

    @property
    def epoch_means(self) -> dict[str, Tensor]:
        """The last finished training epoch's means (``train_loss``, ``cot_loss``, ``train_acc``)."""
        return dict(self._epoch_means)

    # --- the COT step ----------------------------------------------------------------------

    trainer = checked_trainer_property(_check_trainer_flags)

    @property
    def mode(self) -> str:
        return self.objective.mode

    def training_step(self, batch: Any, batch_idx: int) -> None:
        self._cot_step_ran = True
        size = self._group_size(batch_idx)
        self._stepper.first_phase(batch, size)
        self._group.append(batch)
        last = is_last_batch(self.trainer)
        self._after_last_batch = last or batch_idx + 1 == self.trainer.num_training_batches
        if len(self._group) >= size or last:  # the last batch closes a short group of an unsized loader
            self._finish_group()
        if last or batch_idx + 1 == self.trainer.num_training_batches:
            self._log_epoch_means()  # before the epoch-end validation, so callbacks there see them

    def _group_size(self, batch_idx: int) -> int:
        num_batches = self.trainer.num_training_batches
        if batch_idx >= num_batches:
            raise RuntimeError(
                f"CotModule got batch {batch_idx} of an epoch of {num_batches} batches: the loader yielded more "
                "batches than it reported (a resumed run whose loader was not restored?). Use "
                "complement.training.resumable_loader, whose position Lightning saves in checkpoints."
            )
        return group_size(batch_idx, self.cot_accumulate_grad_batches, num_batches)

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
        flat_logits, flat_target = flatten_class_last(logits, target)  # a clear error for a non-tensor output
        flat_logits = flat_logits.detach()
        hits = flat_logits.argmax(-1) == flat_target
        if 0 <= ignore_index < flat_logits.shape[-1]:  # a prediction can equal ignore_index only then
            hits &= flat_target != ignore_index
        self._epoch_stats.add_batch(hits.sum(), kept)

    def _optimizer_step(self, phase: Phase) -> None:
        optimizers = self.optimizers()
        ce, complement = split_optimizers(optimizers if isinstance(optimizers, list) else [optimizers])
        if phase == Phase.COMPLEMENT:
            with step_not_counted(complement):
                complement.step()
        else:
            ce.step()
        # All of the model's gradients, not only the optimizer's: with two optimizers over
        # different parameters, no gradient of one phase may reach the other's step.
        self.zero_grad(set_to_none=True)

    def _rescale_gradients(self, factor: float) -> None:
        for parameter in self.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(factor)

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.cot_gradient_clip_val is not None:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.cot_gradient_clip_val,
                gradient_clip_algorithm=self.cot_gradient_clip_algorithm,
            )

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
        step_schedulers(self.trainer, "step", self.trainer.global_step, self._plateau_monitors, self._group_logs)

    # --- epochs ----------------------------------------------------------------------------

    def _log_epoch_means(self) -> None:
        means = self._epoch_stats.compute(self.trainer.strategy)
        self._epoch_stats.reset()
        self._epoch_means = means
        for name, tensor in means.items():
            value = float(tensor)  # already summed over ranks: a float, so Lightning neither syncs nor warns
            forked = name if name == "train_acc" else f"{name}_epoch"
            self.log(forked, value, prog_bar=name in PROGRESS_BAR, on_step=False, on_epoch=True, batch_size=1)
            if forked != name:  # the plain name, for callbacks (ModelCheckpoint/EarlyStopping) as Lightning gives it
                self.log(name, value, logger=False, on_step=False, on_epoch=True, batch_size=1)

    def on_fit_start(self) -> None:
        _warn_about_eval_mode(self)
        check_optimizers_train(self, self.trainer.optimizers, type(self).__name__)

    def on_train_epoch_start(self) -> None:
        if not self._restored_stats:  # a mid-epoch resume keeps the statistics it restored
            self._epoch_stats.reset()
        self._restored_stats = False
        self._epoch_means = {}

    def on_train_epoch_end(self) -> None:
        self._after_last_batch = False
        if self._group:  # the loader ended inside a group without flagging its last batch
            self._finish_group()
        if self._epoch_stats.groups:  # ... nor the end of the epoch
            self._log_epoch_means()
        step_schedulers(self.trainer, "epoch", self.current_epoch + 1, self._plateau_monitors, self._epoch_means)

    # --- evaluation ------------------------------------------------------------------------

    def _evaluate(self, batch: Any, stage: str) -> Tensor:
        logits, target = self.logits_and_target(batch)
        if isinstance(logits, LinearLogits):
            raise TypeError(
                f"{stage} needs materialized logits, and logits_and_target returned LinearLogits; compute the logits "
                "for evaluation (if not self.training: return the output layer's logits)."
            )
        logits, target = flatten_class_last(logits, target)
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
        if self._group:
            warnings.warn(
                f"a checkpoint is being saved inside an accumulation group ({len(self._group)} of its batches done); "
                "resuming from it repeats that group's first phase. Save at COT steps (every_n_train_steps).",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if self._after_last_batch and self.trainer.training:
            warnings.warn(
                "a checkpoint is being saved after the epoch's last batch but before the epoch's end; Lightning "
                "resumes from it without running that epoch's validation and on_train_epoch_end (epoch-interval "
                "schedulers miss a step). Use complement.lightning.CotCheckpoint for step-interval checkpoints.",
                RuntimeWarning,
                stacklevel=2,
            )
        # Plain tensors and numbers only, so torch.load(weights_only=True) accepts the checkpoint.
        checkpoint[RNG_KEY] = rng_state()
        checkpoint[EPOCH_STATS_KEY] = self._epoch_stats.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if RNG_KEY in checkpoint:
            set_rng_state(checkpoint[RNG_KEY])
        if EPOCH_STATS_KEY in checkpoint:
            self._epoch_stats.load_state_dict(checkpoint[EPOCH_STATS_KEY])
            self._restored_stats = True


def _warn_about_eval_mode(module: nn.Module) -> None:
    """Warn once when modules whose mode matters are in eval mode as training starts.

    Lightning keeps each submodule's mode, and ``from_pretrained`` returns eval mode, so a
    pretrained transformer would train with dropout off. A mode set on purpose is kept."""
    affected = [
        name
        for name, sub in module.named_modules()
        if name
        and not sub.training
        and (
            isinstance(sub, (nn.Dropout, nn.modules.batchnorm._BatchNorm))
            or any(p.requires_grad for p in sub.parameters(recurse=False))
        )
    ]
    if affected:
        shown = ", ".join(affected[:5]) + (f" and {len(affected) - 5} more" if len(affected) > 5 else "")
        warnings.warn(
            f"{type(module).__name__}: {len(affected)} trainable or dropout/BatchNorm submodule(s) are in eval mode "
            f"as training starts ({shown}): their dropout is off and BatchNorm statistics are frozen. Lightning "
            "keeps submodule modes, and from_pretrained() returns a model in eval mode: call .train() on it in "
            "__init__ unless you froze these modules on purpose.",
            UserWarning,
            stacklevel=2,
        )
