"""Small models trained from scratch, sized to train in seconds per epoch on a 2-core CPU.

* :class:`SmallCNN`: two 3x3 conv blocks and a two-layer head (LeNet-like), for any
  channel count and a fixed image size.
* :class:`MLP`: flatten and a few ReLU layers (8x8 digits).
* :class:`CausalTransformerLM` and :class:`GRULM`: next-token models over a vocabulary,
  ``(N, L)`` ids to ``(N, L, V)`` logits.

All return class-last logits. Initialization uses torch's global generator, which the
caller seeds (``torch.manual_seed``) before ``task.build_model()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class SmallCNN(nn.Module):
    """LeNet-like: conv(w)-ReLU-pool, conv(2w)-ReLU-pool, flatten, linear(hidden)-ReLU, linear.

    On the 5k MNIST digits it beats a batch-norm / global-pooling net of the same cost
    (about 97% test accuracy within 3 epochs), and it has no batch statistics to disturb
    COT's second forward pass. ``image_size`` fixes the flattened width.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int | tuple[int, int] = 28,
        width: int = 16,
        hidden: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        height, width_px = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 2 * width * (height // 4) * (width_px // 4)
        if flat == 0:
            raise ValueError(f"image_size {image_size} is too small for SmallCNN; it needs at least 4x4 pixels")
        self.head = nn.Sequential(
            nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Flatten, then ``Linear-ReLU`` for each hidden width, then a linear head."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (128,), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class CausalTransformerLM(nn.Module):
    """A pre-norm decoder-only transformer with learned positions and a tied output head."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.1,
        pad_token_id: int = 0,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        self.position = nn.Embedding(max_length, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward=4 * d_model,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # nested tensors are for padding masks, which a right-padded causal model does not need
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: fewer parameters, faster to train
        # small embeddings (GPT-2's 0.02): with N(0, 1) the tied head starts with logits of std ~sqrt(d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[pad_token_id].zero_()

    def forward(self, input_ids: Tensor) -> Tensor:
        length = input_ids.shape[1]
        if length > self.max_length:
            raise ValueError(f"sequence length {length} exceeds the model's max_length {self.max_length}")
        positions = torch.arange(length, device=input_ids.device)
        x = self.embed(input_ids) + self.position(positions)
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=input_ids.device, dtype=x.dtype)
        # padding sits after the last real token, so the causal mask alone keeps it out of view
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.head(self.norm(x))


class GRULM(nn.Module):
    """Embedding - GRU - linear: the cheapest recurrent next-token model."""

    def __init__(
        self, vocab_size: int, d_model: int = 128, n_layers: int = 1, dropout: float = 0.1, pad_token_id: int = 0
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_token_id)
        self.gru = nn.GRU(d_model, d_model, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, input_ids: Tensor) -> Tensor:
        out, _ = self.gru(self.drop(self.embed(input_ids)))
        return self.head(self.drop(out))
