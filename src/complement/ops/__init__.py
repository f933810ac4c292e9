"""Autograd Functions and kernels behind the losses.

- ``complement_entropy``: the row-wise complement entropy with its analytic gradient.
- ``joint``: cross-entropy and complement entropy from one read of the logits.
- ``_kernels``: eager or ``torch.compile``d execution of the row math.
- ``chunked_linear``: output layer + CE + complement loss, chunked so the N x V logits never exist.
- ``triton_loss``: the one-pass Triton kernel (imported only on use; needs ``triton``).
"""

from .chunked_linear import (
    ChunkedLinearRowsFunction,
    ChunkedLinearScalarFunction,
    linear_complement_entropy,
    linear_cross_entropy,
    linear_cross_entropy_and_complement,
    linear_guided_complement_entropy,
)
from .complement_entropy import ComplementEntropyFunction, complement_entropy_rows
from .joint import JointFunction, cross_entropy_and_complement_entropy_rows

__all__ = [
    "ChunkedLinearRowsFunction",
    "ChunkedLinearScalarFunction",
    "ComplementEntropyFunction",
    "JointFunction",
    "complement_entropy_rows",
    "cross_entropy_and_complement_entropy_rows",
    "linear_complement_entropy",
    "linear_cross_entropy",
    "linear_cross_entropy_and_complement",
    "linear_guided_complement_entropy",
]
