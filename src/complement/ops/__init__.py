"""The ops layer: autograd Functions and kernels behind the losses.

- ``complement_entropy``: the row-wise complement entropy with its analytic gradient.
- ``joint``: cross-entropy and complement entropy from one read of the logits.
- ``_kernels``: eager or ``torch.compile``d execution of the row math.
- ``chunked_linear``: the chunked output layer + loss Functions, chunk loop and backend choice.
- ``triton_loss``: the one-pass Triton kernel (imported only on use; needs ``triton``).

This layer imports only :mod:`complement._validation`; the public losses built on it are
in :mod:`complement.losses`.
"""

from .chunked_linear import ChunkedLinearRowsFunction, ChunkedLinearScalarFunction
from .complement_entropy import ComplementEntropyFunction, complement_entropy_rows
from .joint import JointFunction, cross_entropy_and_complement_entropy_rows

__all__ = [
    "ChunkedLinearRowsFunction",
    "ChunkedLinearScalarFunction",
    "ComplementEntropyFunction",
    "JointFunction",
    "complement_entropy_rows",
    "cross_entropy_and_complement_entropy_rows",
]

_MOVED = (
    "linear_cross_entropy",
    "linear_complement_entropy",
    "linear_guided_complement_entropy",
    "linear_cross_entropy_and_complement",
)


def __getattr__(name: str):
    # The public linear_* losses moved to the loss layer (0.2.0); say where, without importing it here.
    if name in _MOVED:
        raise AttributeError(f"complement.ops.{name} moved to complement.{name} (complement.losses.linear)")
    raise AttributeError(f"module 'complement.ops' has no attribute {name!r}")
