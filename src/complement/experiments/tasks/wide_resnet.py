"""WRN-34-10: the wide residual network of the adversarial-training papers' CIFAR-10 results.

Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146): a
pre-activation ResNet (:mod:`.resnet`'s unit, ``x + conv(relu(bn(conv(relu(bn(x))))))``)
made shallow and wide. WRN-d-k has three groups of ``n = (d - 4) / 6`` units with
``16k``, ``32k`` and ``64k`` channels (strides 1, 2, 2), after a 16-channel 3x3 stem, then
batch norm, ReLU, global average pooling and a linear layer. Madry et al. (ICLR 2018),
TRADES (Zhang et al., ICML 2019) and the robust-overfitting study of Rice et al. (ICML
2020) report their CIFAR-10 numbers with WRN-34-10: ``n = 5``, channels 160, 320, 640.

A unit whose shape changes takes its 1x1 shortcut from the pre-activated input (as the
paper's and :mod:`.resnet`'s); no dropout (the adversarial-training papers use none).
Convolutions are initialized He-normal over their outputs (``fan_out``), as the WRN
authors' code does; batch norms at weight 1, bias 0; the linear layer's bias at 0.
46,160,474 parameters for 10 classes.

Returns class-last logits ``(N, num_classes)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .resnet import PreActBlock


class WideResNet(nn.Module):
    """WRN-``depth``-``widen`` for 32x32 images (see the module docstring)."""

    def __init__(self, depth: int = 34, widen: int = 10, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError(f"a wide ResNet's depth is 6n + 4 with n >= 1 (e.g. 28, 34); got {depth!r}")
        if isinstance(widen, bool) or not isinstance(widen, int) or widen < 1:
            raise ValueError(f"widen must be an integer >= 1; got {widen!r}")
        units = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        groups, channels = [], 16
        for width, stride in zip(widths, (1, 2, 2)):
            blocks = [PreActBlock(channels, width, stride)] + [PreActBlock(width, width) for _ in range(units - 1)]
            groups.append(nn.Sequential(*blocks))
            channels = width
        self.groups = nn.Sequential(*groups)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.groups(self.stem(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def wrn34_10(num_classes: int = 10, in_channels: int = 3) -> WideResNet:
    """WRN-34-10, the adversarial-training papers' CIFAR-10 network."""
    return WideResNet(34, 10, num_classes, in_channels)
