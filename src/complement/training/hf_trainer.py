"""COT with the Hugging Face ``Trainer``: its optimizer, scheduler, accumulation and AMP.

    trainer = CotTrainer(model=model, args=TrainingArguments(...), train_dataset=..., mode="alternate")
    trainer.train()

Per optimizer step (after ``gradient_accumulation_steps`` micro-batches) in ``alternate``
mode: phase 1's gradients (cross-entropy, or ``primary_loss``) are clipped (``max_grad_norm``) and applied by
hand with the Trainer's optimizer, then the buffered micro-batches are forwarded again
for the complement loss, and the Trainer's own loop clips, steps the optimizer and the
scheduler, and counts the step, so ``global_step``, ``max_steps`` and schedulers count
COT steps. ``joint`` and ``off`` only change the loss. The model gets the batch without
``labels`` and must return ``logits`` (class-last); the loss is computed here.
The COT options (``mode``, ``complement_loss``, ``complement_weight``, ``ignore_index``,
``complement_loss_kwargs``, ``primary_loss``, ``primary_loss_kwargs``) are those of
``CotStep`` and ``CotModule`` (:class:`~complement.training.objective.CotConfig`), and
so are the logged names: ``train_loss`` (phase 1's loss), ``cot_loss`` and
``cot_entropy``, beside the Trainer's ``loss``. (``cot_mode`` is a deprecated alias of
``mode``.)

Causal language models: ``causal_lm=True`` predicts token ``t+1`` from position ``t``
(labels are shifted here, as the model's own loss would); ``fused_lm_head=True`` also
skips the model's LM head and computes every phase from the last hidden states and the
head's weight with the chunked op, so the N x V logits never exist.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from torch import Tensor, nn
from transformers import Trainer

from .adversarial import AdversarialTraining, Adversary
from .objective import (
    CotConfig,
    CotObjective,
    LinearLogits,
    LossFn,
    Phase,
    forward_replaced,
    refuse_unused_parameter_search,
)
from .stepper import CotStepper, check_optimizers_train

LABELS = "labels"


def _no_unused_parameter_search(args: Any) -> None:
    """The fused head's loss uses the LM head after the forward: DDP must not search for
    unused parameters (see ``refuse_unused_parameter_search``). The Trainer's default
    searches; an explicit ``True`` is refused."""
    if args is None:
        return  # the Trainer's default arguments; refused at the first step if run under DDP
    if args.ddp_find_unused_parameters:
        raise ValueError(
            "fused_lm_head=True computes the loss from the LM head after the model's forward, which DDP's search "
            "for unused parameters (ddp_find_unused_parameters=True) cannot see. Leave it unset or set it to False."
        )
    args.ddp_find_unused_parameters = False


def _accept_cot_mode(init: Any) -> Any:
    """``cot_mode=``, the name ``mode`` had before 0.2.0: forwarded to ``mode`` with a
    DeprecationWarning; refused beside ``mode``. (A wrapper, so that ``mode`` keeps the
    default of the other front ends and an explicit ``mode`` can be told from the default.)"""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if "cot_mode" in kwargs:
            if "mode" in kwargs:
                raise TypeError(
                    f"CotTrainer got both mode={kwargs['mode']!r} and cot_mode={kwargs['cot_mode']!r}; "
                    "cot_mode is the deprecated name of mode: pass mode only"
                )
            warnings.warn(
                "CotTrainer(cot_mode=...) is deprecated since complement 0.2.0; pass mode=... "
                "(the name CotStep and CotModule use)",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["mode"] = kwargs.pop("cot_mode")
        init(self, *args, **kwargs)

    return __init__


class CotTrainer(Trainer):
    """The Hugging Face ``Trainer`` with COT's step (see the module's docstring).

    Takes the Trainer's arguments, COT's options as ``CotStep`` and ``CotModule`` take
    them (:class:`~complement.training.objective.CotConfig`: ``mode``, ``complement_loss``,
    ``complement_weight``, ``ignore_index``, ``complement_loss_kwargs``, ``primary_loss``,
    ``primary_loss_kwargs``; keyword-only here), and ``causal_lm`` / ``fused_lm_head``.
    ``cot_mode`` is a deprecated alias of ``mode``.
    """

    @_accept_cot_mode
    def __init__(
        self,
        *args,
        mode: str = "alternate",
        complement_loss: str | LossFn = "complement_entropy",
        complement_weight: float = 1.0,
        ignore_index: int = -100,
        complement_loss_kwargs: dict | None = None,
        primary_loss: str | LossFn = "cross_entropy",
        primary_loss_kwargs: dict | None = None,
        causal_lm: bool = False,
        fused_lm_head: bool = False,
        adversarial: AdversarialTraining | None = None,
        **kwargs,
    ):
        if fused_lm_head and not causal_lm:
            raise ValueError("fused_lm_head=True applies to causal language models; pass causal_lm=True too")
        self.causal_lm = causal_lm
        self.fused_lm_head = fused_lm_head
        if fused_lm_head:
            _no_unused_parameter_search(kwargs.get("args", args[1] if len(args) > 1 else None))
        config = CotConfig(
            mode=mode,
            complement_loss=complement_loss,
            complement_weight=complement_weight,
            ignore_index=ignore_index,
            complement_loss_kwargs=complement_loss_kwargs,
            primary_loss=primary_loss,
            primary_loss_kwargs=primary_loss_kwargs,
        )
        self.cot_objective = CotObjective(config)
        super().__init__(*args, **kwargs)
        if getattr(self, "is_deepspeed_enabled", False) and self.cot_objective.mode == "alternate":
            raise ValueError(
                "CotTrainer does not run under DeepSpeed: COT takes its cross-entropy step inside training_step, "
                "while DeepSpeed's engine owns the optimizer step (and its loss scaling and gradient partitioning). "
                "Use FSDP through Accelerate (fsdp in TrainingArguments) or DDP; mode='joint' or 'off' take one "
                "step per batch and can."
            )
        self._stepper = CotStepper(
            self.cot_objective,
            self._forward_for_phase,
            lambda loss: self.accelerator.backward(loss),  # noqa: PLW0108 (looked up per call)
            self._ce_step,
            loss_context=self.compute_loss_context_manager,
            adversary=None if adversarial is None else Adversary(adversarial, None),  # its model: each step's
        )
        self._cot_model: nn.Module | None = None  # the (wrapped) model of the current training_step
        self._cot_group: list[dict[str, Any]] = []
        self._cot_log_sums: dict[str, float] = {}
        self._cot_log_count = 0

    def logits_and_target(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[Tensor | LinearLogits, Tensor]:
        if LABELS not in inputs:
            raise KeyError(f"CotTrainer needs the targets under '{LABELS}' in each batch; got keys {sorted(inputs)}")
        features = {key: value for key, value in inputs.items() if key != LABELS}
        target = inputs[LABELS]
        if self.fused_lm_head:
            unwrapped: Any = self.accelerator.unwrap_model(model)  # a PreTrainedModel
            head = unwrapped.get_output_embeddings()
            if head is None:
                raise ValueError(
                    "fused_lm_head=True needs a model with an output embedding (LM head); "
                    f"{type(unwrapped).__name__} has none"
                )

            def last_hidden_state(**features):
                return unwrapped.base_model(**features).last_hidden_state

            # Through the (wrapped) model's call, so DDP and FSDP act on this forward; the head
            # itself, not its weight, so the loss then runs inside its forward (FSDP gathers it there).
            with forward_replaced(unwrapped, last_hidden_state):
                hidden = model(**features)
            return LinearLogits(hidden[:, :-1], head), target[:, 1:]
        outputs = model(**features)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        refuse_unused_parameter_search(model, logits, "Pass TrainingArguments(ddp_find_unused_parameters=False).")
        if self.causal_lm:
            return logits[:, :-1], target[:, 1:]
        return logits, target

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The first phase's loss (the primary loss, CE by default; plus the complement in joint mode);
        used by evaluation too."""
        logits, target = self.logits_and_target(model, inputs)
        part = self.cot_objective.phase_loss(Phase.CE, logits, target)
        if return_outputs and isinstance(logits, LinearLogits):
            raise ValueError("fused_lm_head=True computes no logits to return; evaluate with prediction_loss_only=True")
        return (part.loss, {"logits": logits}) if return_outputs else part.loss

    def _forward_for_phase(self, inputs: dict[str, Any], phase: Phase) -> tuple[Tensor | LinearLogits, Tensor]:
        assert self._cot_model is not None, "set by training_step"
        return self.logits_and_target(self._cot_model, inputs)

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch=None) -> Tensor:
        """Phase 1 on each micro-batch; after the group's last, the CE step and phase 2.

        The Trainer's own loop then clips, makes the group's last step (phase 2's, or the
        only phase's), steps the scheduler and counts the step."""
        model.train()
        if self._cot_model is not model:  # once per model: a frozen one, or an optimizer over other tensors
            assert self.optimizer is not None, "created by the Trainer before training starts"
            check_optimizers_train(model, [self.optimizer], "CotTrainer")
            if self._stepper.adversary is not None:
                self._stepper.adversary.model = model  # the (wrapped) model whose mode the attack switches
        self._cot_model = model
        inputs = self._prepare_inputs(inputs)
        loss = self._stepper.first_phase(inputs, self.current_gradient_accumulation_steps)
        self._cot_group.append(inputs)  # phase 2 replays the group; the stepper checks its size
        if self.accelerator.sync_gradients:
            logs = self._stepper.finish(self._cot_group, step_last=False)
            self._cot_group = []
            for name, value in logs.items():  # the names CotStep returns and CotModule logs
                self._cot_log_sums[name] = self._cot_log_sums.get(name, 0.0) + float(value)
            self._cot_log_count += 1
        return loss

    def _ce_step(self, phase: Phase) -> None:
        """The CE step, as the Trainer's loop does its own: clip, the optimizer-step callbacks
        around the step, zero. (``state.global_step`` counts the COT step once, at its end.)"""
        model = self._cot_model
        assert phase == Phase.CE and model is not None, "the Trainer's loop makes the group's last step"
        if self.args.max_grad_norm is not None and self.args.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        assert self.optimizer is not None, "created by the Trainer before training starts"
        self.control = self.callback_handler.on_pre_optimizer_step(self.args, self.state, self.control)
        self.optimizer.step()
        self.control = self.callback_handler.on_optimizer_step(self.args, self.state, self.control)
        model.zero_grad(set_to_none=True)  # all of them: the optimizer may not hold every parameter

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if self._cot_log_count and "loss" in logs:
            for name, total in self._cot_log_sums.items():
                logs[name] = round(total / self._cot_log_count, 6)
            self._cot_log_sums, self._cot_log_count = {}, 0
        super().log(logs, *args, **kwargs)
