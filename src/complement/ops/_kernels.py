"""Choosing how the row-wise loss math runs: plain torch ops or a ``torch.compile``d kernel.

The logits-space math of each loss is written once, as plain torch functions.
``torch.compile`` (Inductor) fuses it into one or two passes per row with no
temporaries, which is what makes the complement loss cost about as much as
``F.cross_entropy``. Compiling takes seconds, so the default ("auto") compiles only
for logits of at least ``COMPILE_MIN_ELEMENTS`` elements. Below that, and whenever
nothing fuses, the losses use their probability-space Functions instead
(:meth:`RowKernel.fuses` tells which), which need fewer eager ops; the logits-space
math also runs eagerly where a compilation failed.

Set ``COMPLEMENT_KERNELS`` to ``eager``, ``compiled`` or ``auto`` (default).
Under ``auto`` a failed compilation (no C++ compiler, an unsupported device) warns
once and falls back to eager; under ``compiled`` it raises.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch

KERNEL_MODES = ("auto", "eager", "compiled")
COMPILE_MIN_ELEMENTS = 1 << 16
ENV_VAR = "COMPLEMENT_KERNELS"


def kernel_mode() -> str:
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in KERNEL_MODES:
        raise ValueError(f"{ENV_VAR} must be one of {KERNEL_MODES}; got {mode!r}")
    return mode


class RowKernel:
    """A plain-torch function that is compiled on first use for large inputs."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.__name__ = fn.__name__
        self._compiled: Callable | None = None
        self._failed = False

    def compiles(self, numel: int) -> bool:
        """Whether a call on ``numel`` elements runs this kernel's own compiled version."""
        mode = kernel_mode()
        if mode == "eager" or self._failed or torch.compiler.is_compiling():
            return False
        return mode == "compiled" or numel >= COMPILE_MIN_ELEMENTS

    def fuses(self, numel: int) -> bool:
        """Whether the math will be fused: compiled here, or traced by an outer ``torch.compile``.

        Callers pick a formulation written for fusion when this is true, and one with
        few ops (eager torch pays per op) when it is false."""
        return torch.compiler.is_compiling() or self.compiles(numel)

    def __call__(self, *args, numel: int):
        # Under an outer torch.compile, Dynamo traces and fuses the eager math itself.
        if not self.compiles(numel):
            return self.fn(*args)
        mode = kernel_mode()
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
        try:
            return self._compiled(*args)
        except Exception as error:  # compilation needs a C++/Triton toolchain
            if mode == "compiled":
                raise
            self._failed = True
            warnings.warn(
                f"complement: compiling {self.__name__} failed ({type(error).__name__}: {error}); "
                f"using eager torch ops instead (slower, more memory). Set {ENV_VAR}=eager to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )
            return self.fn(*args)
