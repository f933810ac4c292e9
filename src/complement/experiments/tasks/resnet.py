"""PreAct ResNet-18: the network of the COT paper's CIFAR-10 experiments.

He, Zhang, Ren and Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016
(arXiv:1603.05027): the *pre-activation* residual unit applies batch norm and ReLU before
each convolution, ``x + conv(relu(bn(conv(relu(bn(x))))))``, so the identity path carries
the signal untouched. The CIFAR variant with basic (two 3x3 conv) blocks, as the COT
authors use it (henry8527/COT, ``code/models/PreActResNet.py``; written after
kuangliu/pytorch-cifar):

* stem: one 3x3 conv, 64 channels, stride 1 (no pooling: CIFAR images are 32x32);
* four stages of two :class:`PreActBlock` each: 64, 128, 256, 512 channels, strides
  1, 2, 2, 2; the first block of a stage whose shape changes has a 1x1 conv shortcut,
  fed by the block's pre-activated input as in the paper's figure 4(e);
* global average pooling (4x4 on 32x32 inputs) and a linear layer to the classes.

convolutions have no bias (batch norm follows), and every layer keeps torch's default
initialization, as the authors' code does. 11,171,146 parameters for 10 classes.

The paper also puts an extra BN-ReLU after the last unit (section 4.1: "for the last
Residual Unit ... we adopt an extra activation right after its element-wise addition");
the COT authors' network does not have it, so it is off by default
(``final_activation=True`` adds it, 1,024 more parameters).

Returns class-last logits ``(N, num_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, plus the input (or a 1x1 conv of its activation)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        # a projection shortcut sees the pre-activated input; the identity one sees x itself
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """A CIFAR PreAct ResNet of :class:`PreActBlock` stages (see the module docstring)."""

    def __init__(
        self,
        blocks: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        final_activation: bool = False,
    ):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError(f"one block count per stage: {len(blocks)} counts for {len(widths)} widths")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        stages: list[nn.Module] = []
        channels = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            stride = 1 if index == 0 else 2
            layers = []
            for block in range(count):
                layers.append(PreActBlock(channels, width, stride if block == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.final: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) if final_activation else nn.Identity()
        )
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.final(self.stages(self.stem(x)))
        return self.linear(out.mean(dim=(2, 3)))  # global average pooling


def preact_resnet18(num_classes: int = 10, in_channels: int = 3, final_activation: bool = False) -> PreActResNet:
    """PreAct ResNet-18: four stages of two basic pre-activation blocks (11.17M parameters for 10 classes)."""
    return PreActResNet((2, 2, 2, 2), num_classes, in_channels, final_activation=final_activation)
