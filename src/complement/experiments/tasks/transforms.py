"""The few image transforms the image tasks need, in plain torch.

torchvision is not a dependency on purpose: on this CPU-only setup it would pull a
multi-gigabyte CUDA build of torch. Images are ``(C, H, W)`` float tensors; random
transforms draw from torch's global generator, which the training engine seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def resize(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize ``(C, H, W)`` or ``(N, C, H, W)`` float images to ``size`` (bilinear, antialiased)."""
    size = (size, size) if isinstance(size, int) else (size[0], size[1])
    single = images.dim() == 3
    batch = images[None] if single else images
    if tuple(batch.shape[-2:]) != size:
        batch = F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)
    return batch[0] if single else batch


def channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of ``(N, C, H, W)`` images (std floored to avoid dividing by 0)."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean, std


def normalize(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (images - mean[:, None, None]) / std[:, None, None]


class RandomShift:
    """Pad by ``pad`` pixels (replicating the border) and crop back at a random offset."""

    def __init__(self, pad: int):
        self.pad = int(pad)

    def __call__(self, image: Tensor) -> Tensor:
        if self.pad == 0:
            return image
        h, w = image.shape[-2:]
        padded = F.pad(image[None], (self.pad,) * 4, mode="replicate")[0]
        dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        return padded[..., dy : dy + h, dx : dx + w]

    def __repr__(self) -> str:
        return f"RandomShift(pad={self.pad})"


class RandomCrop:
    """Pad by ``pad`` pixels of a constant ``fill`` and crop back to the input size at a random offset.

    torchvision's ``RandomCrop(size, padding=pad)`` (fill 0), the CIFAR augmentation of the
    ResNet papers and of the COT authors' code. It differs from :class:`RandomShift` only in
    the padding: constant, not the replicated border. ``fill`` is one number or one value per
    channel: on normalized images, ``-mean / std`` pads with the black that torchvision
    pads raw pixels with. Each of the ``(2 * pad + 1) ** 2`` offsets is equally likely.
    """

    def __init__(self, pad: int, fill: float | Sequence[float] | Tensor = 0.0):
        self.pad = int(pad)
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0; got {pad}")
        fill_tensor = torch.as_tensor(fill, dtype=torch.float32).detach().clone()
        if fill_tensor.dim() > 1:
            raise ValueError(f"fill must be a number or one value per channel; got shape {tuple(fill_tensor.shape)}")
        self.fill = fill_tensor

    def __call__(self, image: Tensor) -> Tensor:
        if self.pad == 0:
            return image
        pad = self.pad
        h, w = image.shape[-2:]
        padded = image.new_empty((*image.shape[:-2], h + 2 * pad, w + 2 * pad))
        padded[...] = self.fill.to(image.dtype).reshape(-1, 1, 1) if self.fill.dim() else self.fill.item()
        padded[..., pad : pad + h, pad : pad + w] = image
        dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()
        return padded[..., dy : dy + h, dx : dx + w]

    def __repr__(self) -> str:
        fill = self.fill.tolist()
        fill_text = f"{fill:g}" if isinstance(fill, float) else "[" + ", ".join(f"{v:.4g}" for v in fill) + "]"
        return f"RandomCrop(pad={self.pad}, fill={fill_text})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p`` (not for digits: a mirrored 3 is no digit)."""

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, image: Tensor) -> Tensor:
        return image.flip(-1) if torch.rand(()) < self.p else image

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Tensor], Tensor]]):
        self.transforms = list(transforms)

    def __call__(self, image: Tensor) -> Tensor:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"
