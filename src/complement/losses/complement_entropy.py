"""Complement entropy, the second objective of Complement Objective Training.

Chen et al., "Complement Objective Training", ICLR 2019 (https://arxiv.org/abs/1903.01182).

For logits ``z`` and target ``g`` let ``q`` be the softmax of the non-target logits,
``q_j = p_j / (1 - p_g)`` for ``j != g``, and ``H(q) = -sum_{j != g} q_j log q_j`` its
entropy, which lies in ``[0, log(K - 1)]``. The loss is

    L = -(1 / N) * sum_i H(q_i) / Z

so *minimizing* it *maximizes* the complement entropy, flattening the probability
of the wrong classes. **The loss is negative by construction** (``-H / Z <= 0``; it is
0 only when the wrong classes' distribution is one-hot, and falls as it flattens), so a
logged ``cot_loss`` around ``-0.2`` is healthy, not a bug: most issues filed on the
authors' repository are about this sign. ``Z`` is the normalization:

=========================  ===========  ==============================================
``normalization``          ``Z``        used by
=========================  ===========  ==============================================
``"classes"`` (default)    ``K``        the authors' code (henry8527/COT) and the seed
``"complement_classes"``   ``K - 1``    the paper's equation
``"log_classes"``          ``log K``    Guided Complement Entropy (ICCV 2019)
``"max_entropy"``          ``log(K-1)`` maps the loss to ``[-1, 0]`` (1 when K = 2)
``"none"``                 ``1``        the plain entropy
=========================  ===========  ==============================================

With the default, the value equals the authors' ``sum(q * log q * (1 - onehot)) / N / K``
without their ``1e-7``/``1e-10`` epsilons, which bias it as ``p_g -> 1``. With
``reduction="mean"``, ``N`` is the number of targets that are not ``ignore_index``;
a batch where every target is ignored gives 0 with zero gradient.

It is computed from logits with an analytic gradient, as a masked log-sum-exp where
``torch.compile`` fuses it and as the softmax of the non-target logits in eager torch
(see :mod:`complement.ops.complement_entropy`); float16/bfloat16 logits are computed
in float32 and the loss is returned in float32. With K = 2 the complement is one
class, so the loss and its gradient are 0. Non-finite logits follow ``F.cross_entropy``:
a NaN or ``+inf`` logit anywhere in a kept row, the target's included (though ``H``
does not depend on it), makes the loss NaN, so a broken model is never reported with a
finite loss; ``-inf`` on a non-target class excludes that class from the complement,
and ``-inf`` on the target makes the row NaN (its cross-entropy is infinite).
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_choice, check_ignore_index
from ..ops.complement_entropy import complement_entropy_rows
from ._rows import check_reduction, prepare, reduce_rows, reduction_factor
from ._rules import NORMALIZATIONS, check_class_count, check_num_classes_arg, normalizer
from .joint import cross_entropy_and_complement_entropy

__all__ = ["NORMALIZATIONS", "ComplementEntropy", "complement_entropy"]


def complement_entropy(
    input: Tensor,
    target: Tensor,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "classes",
    validate: bool = True,
) -> Tensor:
    """COT's complement loss ``-H(q) / Z``, averaged like ``F.cross_entropy`` (negative by construction).

    Args:
        input: logits ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target: class indices ``()``, ``(N,)`` or ``(N, d1, ...)``, int64 or int32.
        ignore_index: target value that does not count.
        reduction: ``"mean"`` over kept targets, ``"sum"``, or ``"none"`` (ignored positions are 0).
        normalization: the divisor ``Z``; see the module docstring.
        validate: check that targets are in range (one host sync); ``False`` for hot loops.

    An empty batch, or one whose targets are all ``ignore_index``, gives 0 with zero gradient
    under ``reduction="mean"``, where ``F.cross_entropy`` gives NaN (a mean over no rows): on
    purpose, as in every complement loss and chunked twin of the package, because COT
    back-propagates each micro-batch's loss into one step, and a micro-batch of padding only
    (common in sequence training) would otherwise make the whole step's gradients NaN.

    A flat complement reaches the maximum ``H = log(K - 1)``; with the authors' ``Z = K``
    the loss is then ``-log(3) / 4`` for four classes:

    >>> import torch
    >>> from complement import complement_entropy
    >>> complement_entropy(torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0]))
    tensor(-0.2747)
    >>> -torch.log(torch.tensor(3.0)) / 4
    tensor(-0.2747)
    >>> complement_entropy(torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0]), normalization="max_entropy")
    tensor(-1.)
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
    logits, safe_target, kept, target_shape = prepare(
        input, target, ignore_index, reduction, "complement_entropy", validate
    )
    weight = -1.0 / normalizer(normalization, logits.shape[1])
    factor = reduction_factor(kept, reduction, logits.shape[0])
    if factor is not None:  # the op scales and reduces: one autograd node
        return complement_entropy_rows(logits, safe_target, weight * factor, reduce=True)
    return reduce_rows(complement_entropy_rows(logits, safe_target, weight), kept, reduction, target_shape)


class ComplementEntropy(nn.Module):
    """Module twin of :func:`complement_entropy`.

    ``ComplementEntropy(num_classes)(logits, target)`` is a drop-in replacement for the
    authors' class; ``num_classes`` is optional and, when given, is checked against the logits.

    >>> import torch
    >>> from complement import ComplementEntropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0], [0.5, 3.0, 0.0, -1.0]]), torch.tensor([0, 1])
    >>> ComplementEntropy(num_classes=4)(logits, target)
    tensor(-0.2564)
    >>> ComplementEntropy(normalization="max_entropy", reduction="none")(logits, target)  # -H / log(K - 1)
    tensor([-1.0000, -0.8673])
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        ignore_index: int = -100,
        reduction: str = "mean",
        normalization: str = "classes",
        validate: bool = True,
    ):
        super().__init__()
        check_num_classes_arg(num_classes, "ComplementEntropy")
        check_ignore_index(ignore_index)
        check_reduction(reduction)
        check_choice("normalization", normalization, NORMALIZATIONS)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.normalization = normalization
        self.validate = validate

    def _options(self) -> dict:
        return {"ignore_index": self.ignore_index, "reduction": self.reduction, "normalization": self.normalization}

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.num_classes, input, type(self).__name__)
        return complement_entropy(input, target, **self._options(), validate=self.validate)

    def with_cross_entropy(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(cross_entropy, this loss)`` from one read of the logits (COT's joint mode)."""
        check_class_count(self.num_classes, input, type(self).__name__)
        return cross_entropy_and_complement_entropy(input, target, **self._options(), validate=self.validate)

    def normalized_entropy(self, loss: Tensor, num_classes: int) -> Tensor:
        """The mean ``H(q) / log(K - 1)`` in ``[0, 1]`` (1: a flat complement) behind a ``mean`` loss value."""
        return -loss * (normalizer(self.normalization, num_classes) / normalizer("max_entropy", num_classes))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}, normalization={self.normalization!r}"
