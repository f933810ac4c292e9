"""A tiny image task for the robustness and adversarial-training tests: 6x6 grey images of three
classes, each a bright pair of columns over noise, normalized as the real image tasks are."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import TensorDataset

CLASSES = 3


class TupleModel(nn.Module):
    """Returns ``(logits, features)``: a model the attacks must refuse."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU())
        self.head = nn.Linear(16, CLASSES)

    def forward(self, x):
        features = self.body(x)
        return self.head(features), features


def pixel_task(seed: int = 0, kind: str = "image", model: str = "mlp", pixels: bool = True, **options):
    """Three classes, each a bright pair of columns, with noise; ``kind``, ``model`` ("tuple") and ``pixels``
    (False: inputs that are no images once the normalization is undone, as embeddings) make the bad cases."""
    if options:
        raise TypeError(f"unexpected options {sorted(options)}")
    g = torch.Generator().manual_seed(seed)

    def images(n):
        y = torch.arange(n) % CLASSES  # stratified order, as the real tasks' test splits
        x = torch.rand(n, 1, 6, 6, generator=g) * 0.4
        for k in range(CLASSES):
            x[y == k, :, :, 2 * k : 2 * k + 2] += 0.5
        return x.clamp(0, 1) if pixels else x * 4 - 2, y

    train, val, test = images(120), images(48), images(48)
    mean, std = float(train[0].mean()), float(train[0].std())

    def dataset(split):
        x, y = split
        return TensorDataset((x - mean) / std, y)

    def build_model():
        if model == "tuple":
            return TupleModel()
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, CLASSES))

    return SimpleNamespace(
        name="pixels",
        kind=kind,
        train=dataset(train),
        val=dataset(val),
        test=dataset(test),
        num_classes=CLASSES,
        class_names=list("abc"),
        collate_fn=None,
        ignore_index=-100,
        build_model=build_model,
        defaults={
            "max_epochs": 2,
            "batch_size": 40,
            "lr": 0.02,
            "optimizer": "adam",
            "weight_decay": 0.0,
            "adv_eps": 0.15,
        },
        info={"mean": [mean], "std": [std], "image_shape": [1, 6, 6]},
    )
