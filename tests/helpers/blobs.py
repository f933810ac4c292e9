"""A small task for the CLI tests: four Gaussian blobs, put in place of a real task by the ``blobs`` fixture."""

from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import TensorDataset


def blobs_task(seed: int = 0, fail: bool = False, **options):
    """Four Gaussian blobs in 8-D: trains to high accuracy in a few CPU epochs; ``fail`` breaks the model."""
    if options:
        raise TypeError(f"unexpected options {sorted(options)}")

    def build_model():
        if fail:
            raise RuntimeError("model construction failed (fail=True)")
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 8, generator=g) * 2

    def split(n):
        y = torch.randint(0, 4, (n,), generator=g)
        return TensorDataset(centers[y] + torch.randn(n, 8, generator=g), y)

    return SimpleNamespace(
        name="blobs",
        kind="image",
        train=split(160),
        val=split(64),
        test=split(64),
        num_classes=4,
        class_names=list("abcd"),
        collate_fn=None,
        ignore_index=-100,
        build_model=build_model,
        defaults={"max_epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "adam", "weight_decay": 0.0},
    )
