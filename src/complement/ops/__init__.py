"""Autograd Functions and kernels behind the losses.

- ``complement_entropy``: the row-wise complement entropy with its analytic gradient.
- ``joint``: cross-entropy and complement entropy from one read of the logits.
- ``_kernels``: eager or ``torch.compile``d execution of the row math.
"""

from .complement_entropy import ComplementEntropyFunction, complement_entropy_rows
from .joint import JointFunction, cross_entropy_and_complement_entropy_rows

__all__ = [
    "ComplementEntropyFunction",
    "JointFunction",
    "complement_entropy_rows",
    "cross_entropy_and_complement_entropy_rows",
]
