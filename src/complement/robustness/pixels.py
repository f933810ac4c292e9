"""A model that takes pixels: the task's normalization moved inside it, where attacks cannot move it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Normalized(nn.Module):
    """``model((x - mean) / std)`` for pixels ``x`` in ``[0, 1]``; ``mean`` and ``std`` per channel.

    Attacks perturb ``x`` within ε of the pixels, the same ε for every task, and the model
    sees what it was trained on."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std must give one value per channel; got {list(mean)} and {list(std)}")
        if any(not s > 0 for s in std):
            raise ValueError(f"std must be positive per channel; got {list(std)}")
        self.model = model
        shape = (1, len(mean), 1, 1)
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)

    def pixels(self, normalized: Tensor) -> Tensor:
        """The pixels of already normalized inputs (clamped to ``[0, 1]`` against rounding)."""
        return (normalized * self.std + self.mean).clamp(0.0, 1.0)
