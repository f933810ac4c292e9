"""Guided Complement Entropy (GCE).

Chen et al., "Improving Adversarial Robustness via Guided Complement Entropy",
ICCV 2019 (https://arxiv.org/abs/1903.09799). Official code: henry8527/GCE.

GCE is used as the *only* training loss. Each sample's complement entropy is
weighted by the model's confidence in the target, ``p_g ** alpha``, and normalized
by ``log K``::

    L = -(1 / N) * sum_i p_{i,g}^alpha * H(q_i) / log K

with ``alpha = 0.333`` in the paper (LeNet-5 on MNIST, Adam, lr 1e-3). The guiding
factor is not detached, as in the authors' code, so the gradient raises ``p_g`` while
flattening the complement. Unlike the authors' code, ``p_g`` and ``H`` come from
logits without ``1e-7``/``1e-10`` epsilons. ``normalization`` takes the values of
:func:`complement.complement_entropy`; the default is this paper's ``log K``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .._validation import check_choice, check_ignore_index
from ..ops.joint import cross_entropy_and_complement_entropy_rows
from ._rows import check_reduction, prepare, reduce_rows
from ._rules import NORMALIZATIONS, check_alpha, check_class_count, check_num_classes_arg, normalizer


def guided_complement_entropy(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float = 0.333,
    ignore_index: int = -100,
    reduction: str = "mean",
    normalization: str = "log_classes",
    validate: bool = True,
) -> Tensor:
    """Guided complement entropy ``-p_g^alpha * H(q) / Z`` (see the module docstring).

    With a flat complement, ``H = log(K - 1)``, so the loss is ``-p_g^0.333 * log(3) / log(4)``:

    >>> import torch
    >>> from complement import guided_complement_entropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> guided_complement_entropy(logits, target)
    tensor(-0.6186)
    >>> -(logits.softmax(1)[0, 0] ** 0.333) * torch.log(torch.tensor(3.0)) / torch.log(torch.tensor(4.0))
    tensor(-0.6186)
    """
    check_alpha(alpha)
    check_choice("normalization", normalization, NORMALIZATIONS)
    logits, safe_target, kept, target_shape = prepare(
        input, target, ignore_index, reduction, "guided_complement_entropy", validate
    )
    ce_rows, entropy_rows = cross_entropy_and_complement_entropy_rows(logits, safe_target)
    guide = (-alpha * ce_rows).exp()  # p_g ** alpha, since CE = -log p_g
    per_row = guide * entropy_rows * (-1.0 / normalizer(normalization, logits.shape[1]))
    return reduce_rows(per_row, kept, reduction, target_shape)


class GuidedComplementEntropy(nn.Module):
    """Module twin of :func:`guided_complement_entropy`.

    >>> import torch
    >>> from complement import GuidedComplementEntropy
    >>> logits, target = torch.tensor([[2.0, 1.0, 1.0, 1.0]]), torch.tensor([0])
    >>> GuidedComplementEntropy(alpha=0.333)(logits, target)
    tensor(-0.6186)
    """

    def __init__(
        self,
        alpha: float = 0.333,
        *,
        num_classes: int | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        normalization: str = "log_classes",
        validate: bool = True,
    ):
        super().__init__()
        check_alpha(alpha)
        check_num_classes_arg(num_classes, "GuidedComplementEntropy")
        check_ignore_index(ignore_index)
        check_reduction(reduction)
        check_choice("normalization", normalization, NORMALIZATIONS)
        self.alpha = alpha
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.normalization = normalization
        self.validate = validate

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.num_classes, input, type(self).__name__)
        return guided_complement_entropy(
            input, target, alpha=self.alpha, ignore_index=self.ignore_index, reduction=self.reduction,
            normalization=self.normalization, validate=self.validate,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, reduction={self.reduction!r}, normalization={self.normalization!r}"
