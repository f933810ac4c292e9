"""What COT minimizes in each phase of a training step.

Modes (Chen et al., ICLR 2019, and ``../docs`` for the comparison):

- ``alternate`` (the authors' algorithm): phase 1 minimizes cross-entropy and steps;
  phase 2 does a fresh forward and minimizes ``complement_weight * complement_loss``.
- ``joint``: one phase on ``CE + complement_weight * complement_loss`` (the authors
  found it consistently worse; it is here for comparison). With the default complement
  entropy it uses the one-pass CE+complement op.
- ``off``: only the primary loss (cross-entropy by default), so the same code trains
  the baselines: CE, or any registered loss trained alone (GCE, complement-CE, focal, ...).

The primary loss (phase 1) is cross-entropy unless ``primary_loss`` names another.

Logits may have the class dimension last, ``(..., C)``, with targets ``(...)``; they
are flattened to ``(M, C)`` rows (no copy for contiguous logits).

Large vocabularies: return :class:`LinearLogits` ``(hidden, weight, bias)`` instead of
logits and every phase runs the losses' *chunked twins* from the registry
(:mod:`complement.losses.linear`), never forming the N x V logits. The objective names
no loss: whatever the registry builds for a name, and whatever twin it offers, is used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_targets, flatten_rows
from ..losses import canonical_name, get_chunked_loss, get_loss, is_complement_objective

MODES = ("alternate", "joint", "off")
LossFn = Callable[[Tensor, Tensor], Tensor]


class Phase(str, Enum):
    """The two phases of a COT step; a ``str`` so that ``Phase.CE == "ce"``."""

    CE = "ce"  # cross-entropy (or the primary loss; in joint mode, CE + complement)
    COMPLEMENT = "complement"  # the fresh forward on the complement loss (alternate mode)


class LinearLogits(NamedTuple):
    """Logits ``hidden @ weight.T + bias`` left unmaterialized for the chunked losses.

    ``hidden`` is ``(..., H)`` (class-last like logits). The output layer is given either
    as its module (``LinearLogits(hidden, model.lm_head)``, any layer with ``weight``
    ``(V, H)`` and ``bias``), or as its tensors (``LinearLogits(hidden, weight, bias)``).

    Give the module under FSDP: the loss then runs inside the layer's forward, where FSDP
    has gathered its sharded weight, and FSDP's backward hooks reduce-scatter its gradient
    (:func:`in_forward_of`). The tensors work on one device and under DDP; a sharded weight
    given as a tensor (a ``DTensor``) is refused with this advice."""

    hidden: Tensor
    weight: Tensor | nn.Module
    bias: Tensor | None = None


@contextmanager
def forward_replaced(module: nn.Module, forward: Callable[..., Any]) -> Iterator[None]:
    """``module.forward`` is ``forward`` inside the block; the module's own is restored after.

    Calling the module (or a wrapper of it: DDP, FSDP) then runs ``forward`` through
    ``module.__call__``, so whatever acts on the module's calls acts on this one: DDP
    prepares its gradient reduction, FSDP gathers the sharded parameters before and hooks
    the backward to reduce-scatter their gradients."""
    own = module.__dict__.get("forward")
    module.forward = forward
    try:
        yield
    finally:
        if own is None:
            del module.forward
        else:
            module.forward = own


def in_forward_of(module: nn.Module, hidden: Tensor, compute: Callable[[Tensor], PhaseLoss]) -> PhaseLoss:
    """``compute(hidden)`` run as ``module``'s forward (see :func:`forward_replaced`): under
    FSDP2 (``fully_shard``) the module's weight is gathered there."""

    def forward(h: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        part = compute(h)
        return part.loss, part.logs  # tensors FSDP's output hooks can see

    with forward_replaced(module, forward):
        loss, logs = module(hidden)
    return PhaseLoss(loss, logs)


def refuse_unused_parameter_search(wrapper: nn.Module, logits: Any, fix: str) -> None:
    """Refuse LinearLogits from a DDP model that searches for unused parameters.

    That search runs when the forward returns and sees only the graph of its outputs, where
    the output layer (used later, by the chunked loss) is absent: DDP reduces the layer's
    gradient as unused, then fails in the backward ("marked ready twice")."""
    if isinstance(logits, LinearLogits) and getattr(wrapper, "find_unused_parameters", False):
        raise ValueError(
            "LinearLogits under DistributedDataParallel(find_unused_parameters=True): DDP looks for unused "
            "parameters when the forward returns, before the chunked loss uses the output layer, so it would "
            f"reduce that layer's gradient twice. {fix}"
        )


def _refuse_sharded(weight: Tensor) -> None:
    if type(weight).__name__ == "DTensor":  # torch.distributed.tensor.DTensor, without importing it
        raise TypeError(
            "LinearLogits got the output layer's weight as a sharded DTensor (FSDP): outside the layer's forward "
            "it is only this rank's shard. Give the layer itself, LinearLogits(hidden, model.lm_head), so the loss "
            "runs inside its forward, where FSDP gathers the weight."
        )


def _not_logits(value: Any, what: str) -> TypeError:
    holds = ""
    if (isinstance(value, dict) and "logits" in value) or hasattr(value, "logits"):
        holds = " It holds logits: return output.logits (or output['logits'])."
    elif isinstance(value, (tuple, list)):
        holds = " If the first element is the logits, return output[0]."
    return TypeError(
        f"COT got {type(value).__name__} as the {what}, where it needs a tensor (class-last logits (..., C), or "
        f"LinearLogits).{holds} Return (logits, target) from logits_and_target: CotStep(logits_and_target=...), "
        "CotModule.logits_and_target(batch) (or a forward that returns the logits), CotTrainer.logits_and_target."
    )


def _num_classes(logits: Any) -> int | None:
    """The class count of class-last logits, or of a ``LinearLogits`` head (its weight's rows)."""
    if isinstance(logits, LinearLogits):
        weight = getattr(logits.weight, "weight", logits.weight)  # an output layer, or its weight tensor
        return weight.shape[0] if isinstance(weight, Tensor) and weight.dim() > 0 else None
    return logits.shape[-1] if isinstance(logits, Tensor) and logits.dim() > 0 else None


def flatten_class_last(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(..., C)`` logits and ``(...)`` targets to ``(M, C)`` and ``(M,)`` (the package's row check,
    :func:`~complement._validation.flatten_rows`); a model output that is not a tensor gets advice."""
    if not isinstance(logits, Tensor):
        raise _not_logits(logits, "model's output")
    rows, flat_target, _ = flatten_rows(logits, target, who="COT")
    return rows, flat_target


@dataclass
class PhaseLoss:
    """A loss to back-propagate and the detached parts to log."""

    loss: Tensor
    logs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class CotConfig:
    """What COT minimizes: the arguments every front end passes on, checked once here.

    ``CotStep``, ``CotModule`` and ``CotTrainer`` each take every field as a parameter of
    the same name and default, and build this config from them
    (``tests/training/test_front_end_signature.py`` checks it).

    Args:
        mode: ``"alternate"``, ``"joint"`` or ``"off"``.
        complement_loss: a registered name (``"complement_entropy"``, ``"guided_complement_entropy"``)
            or a callable ``(logits (M, C), target (M,)) -> scalar``.
        complement_weight: multiplies the complement loss (both modes); a finite number >= 0.
        ignore_index: target value that does not count.
        complement_loss_kwargs: keyword arguments for a named complement loss.
        primary_loss: phase 1's loss: ``"cross_entropy"`` (default), any registered name, or a callable.
        primary_loss_kwargs: keyword arguments for a named primary loss.
    """

    mode: str = "alternate"
    complement_loss: str | LossFn = "complement_entropy"
    complement_weight: float = 1.0
    ignore_index: int = -100
    complement_loss_kwargs: dict[str, Any] | None = None
    primary_loss: str | LossFn = "cross_entropy"
    primary_loss_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"unknown COT mode {self.mode!r}; choose one of {MODES} ('off' trains plain cross-entropy)"
            )
        if not math.isfinite(self.complement_weight):
            raise ValueError(
                f"complement_weight must be a finite number >= 0; got {self.complement_weight}, which would make "
                "every complement loss (and its gradients) non-finite. Pass e.g. 1.0, or mode='off' for no complement."
            )
        if not self.complement_weight >= 0:
            raise ValueError(f"complement_weight must be >= 0; got {self.complement_weight}")
        if self.complement_loss_kwargs and _is_callable(self.complement_loss):
            raise ValueError("complement_loss_kwargs apply to a named complement loss, not to a callable")


def _is_callable(loss: Any) -> bool:
    return callable(loss) and not isinstance(loss, str)


def _name_of(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class _Loss:
    """One phase's loss: the callable, its registry name (if any), and its chunked twin built on demand."""

    def __init__(self, loss: str | LossFn, kwargs: dict[str, Any], ignore_index: int, plain_ce: LossFn):
        self.kwargs = {"ignore_index": ignore_index, **kwargs}
        if _is_callable(loss):
            self.fn, self.name, self.registered, self.is_plain_ce = loss, _name_of(loss), False, False
            return
        assert isinstance(loss, str)
        self.name, self.registered = canonical_name(loss), True
        # Plain CE is F.cross_entropy itself: one autograd node, no Module call.
        self.is_plain_ce = self.name == "cross_entropy" and not kwargs
        self.fn = plain_ce if self.is_plain_ce else get_loss(self.name, **self.kwargs)
        self._chunked: nn.Module | None = None

    def module(self, chunked: bool) -> Any:
        """The loss to call: on logits, or (``chunked``) on ``(hidden, weight, target, bias)``."""
        return self.chunked() if chunked else self.fn

    def chunked(self) -> nn.Module:
        if not self.registered:
            raise ValueError(
                f"the loss {self.name!r} is a callable, which has no chunked twin for LinearLogits; "
                "name a registered loss, or return materialized logits"
            )
        if self._chunked is None:
            self._chunked = get_chunked_loss(self.name, **self.kwargs)
        return self._chunked


class CotObjective:
    """Builds each phase's loss from ``(logits, target)`` as ``config`` (a :class:`CotConfig`) says."""

    def __init__(self, config: CotConfig | None = None):
        config = config or CotConfig()
        if not isinstance(config, CotConfig):
            raise TypeError(f"CotObjective takes a CotConfig; got {type(config).__name__}")
        self.config = config
        self.mode = config.mode
        self.complement_weight = float(config.complement_weight)
        self.ignore_index = config.ignore_index
        complement_kwargs = dict(config.complement_loss_kwargs or {})
        named = config.complement_loss if isinstance(config.complement_loss, str) else None
        if named is not None and not is_complement_objective(named):
            raise ValueError(
                f"{config.complement_loss!r} is not a complement objective for COT's second step; use "
                "'complement_entropy' or 'guided_complement_entropy', or train it alone with mode='off' "
                "and it as the primary loss"
            )
        self.complement = _Loss(config.complement_loss, complement_kwargs, self.ignore_index, self.cross_entropy)
        self.primary = _Loss(
            config.primary_loss, dict(config.primary_loss_kwargs or {}), self.ignore_index, self.cross_entropy
        )
        self.complement_fn, self.complement_name = self.complement.fn, self.complement.name
        self.primary_fn, self.primary_name = self.primary.fn, self.primary.name
        # The registered complement objectives are identically 0 with K = 2 (the complement is one class).
        self._warn_two_classes = self.mode != "off" and self.complement.registered

    def _in_one_pass(self, complement: Any) -> bool:
        """Whether the joint mode reads the logits once: the primary loss is plain CE and the
        complement loss offers CE with itself (``with_cross_entropy``), averaged as CE is."""
        return (
            self.primary.registered
            and self.primary.is_plain_ce
            and hasattr(complement, "with_cross_entropy")
            and getattr(complement, "reduction", "mean") == "mean"
        )

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase.CE, Phase.COMPLEMENT) if self.mode == "alternate" else (Phase.CE,)

    def cross_entropy(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index)

    def _check_class_count(self, num_classes: int | None) -> None:
        """Warn once (per objective) when the complement loss is identically 0: two classes."""
        if num_classes == 2:
            self._warn_two_classes = False
            warnings.warn(
                f"COT: the logits have 2 classes, so the complement of each target is one class and "
                f"{self.complement.name} is identically 0: COT's complement phase (mode={self.mode!r}) changes "
                'nothing and only costs time. Train with mode="off" (cross-entropy alone), or pick another '
                "primary_loss for this binary task.",
                UserWarning,
                stacklevel=4,
            )

    def phase_loss(self, phase: str, logits: Tensor | LinearLogits, target: Tensor) -> PhaseLoss:
        if self._warn_two_classes:
            self._check_class_count(_num_classes(logits))
        if isinstance(logits, LinearLogits):
            hidden, target, _ = flatten_rows(logits.hidden, target, who="COT", name="hidden states", width="H")
            head = logits.weight
            if isinstance(head, nn.Module):
                return in_forward_of(
                    head, hidden, lambda h: self._phase(phase, (h, head.weight, target, head.bias), True)
                )
            _refuse_sharded(head)
            return self._phase(phase, (hidden, head, target, logits.bias), chunked=True)
        rows, flat_target = flatten_class_last(logits, target)
        if phase == Phase.CE and self.primary.is_plain_ce and not self._one_pass_joint():
            # F.cross_entropy's own out-of-range error is a bare IndexError (a device assert on CUDA).
            check_targets(flat_target, rows.shape[1], self.ignore_index, "COT")
        return self._phase(phase, (rows, flat_target), chunked=False)

    def _one_pass_joint(self) -> bool:
        """The joint mode's one-pass op, which checks the targets itself."""
        return self.mode == "joint" and self._in_one_pass(self.complement.fn)

    def _phase(self, phase: str, inputs: tuple, chunked: bool) -> PhaseLoss:
        """The phase's loss on ``inputs``: ``(logits, target)``, or ``(hidden, weight, target, bias)``
        for the chunked twins."""
        if phase == Phase.COMPLEMENT:
            complement_fn = self.complement.module(chunked)
            complement = complement_fn(*inputs)
            logs = _complement_logs(complement_fn, complement, inputs, chunked)
            return PhaseLoss(self.complement_weight * complement, logs)
        if self.mode != "joint":  # alternate's phase 1, or a baseline trained alone
            primary = self.primary.module(chunked)(*inputs)
            return PhaseLoss(primary, {"train_loss": primary.detach()})
        complement_fn = self.complement.module(chunked)
        if self._in_one_pass(complement_fn):
            ce, complement = complement_fn.with_cross_entropy(*inputs)
        else:
            ce, complement = self.primary.module(chunked)(*inputs), complement_fn(*inputs)
        total = ce.add(complement, alpha=self.complement_weight)  # one autograd node
        logs = _complement_logs(complement_fn, complement, inputs, chunked)
        return PhaseLoss(total, {"train_loss": ce.detach(), **logs, "loss": total.detach()})


def _complement_logs(module: Any, complement: Tensor, inputs: tuple, chunked: bool) -> dict[str, Tensor]:
    """``cot_loss`` (negative by construction), and beside it ``cot_entropy``, the mean complement
    entropy as a fraction of its maximum ``log(K - 1)``: 0 to 1, higher is flatter. Logged when the
    loss can give it from its own value (complement entropy with ``reduction="mean"``)."""
    logs = {"cot_loss": complement.detach()}
    normalized = getattr(module, "normalized_entropy", None)
    if normalized is not None and getattr(module, "reduction", "mean") == "mean":
        num_classes = inputs[1].shape[0] if chunked else inputs[0].shape[-1]
        logs["cot_entropy"] = normalized(logs["cot_loss"], num_classes)
    return logs
