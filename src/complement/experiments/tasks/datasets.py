"""The datasets every task returns, and the collator that pads variable-length batches.

* :class:`ImageDataset` holds image tensors with int64 targets and an optional
  per-example transform (augmentation).
* :class:`EncodedDataset` holds pre-tokenized sequences (lists of ids), so tokenization
  happens once up front and a batch only pads.
* :func:`stack_batch` stacks fixed-size examples; :class:`PadCollator` pads a batch to its
  longest sequence: ids with the pad id, targets with ``ignore_index``, and builds the
  attention mask.

Both datasets keep their labels in ``targets`` (``clean_targets`` too when label noise was
added) so reports can count classes without iterating.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from .base import IGNORE_INDEX


class ImageDataset(Dataset):
    """``(inputs[i], targets[i])`` pairs, with ``transform`` applied to the input on access."""

    def __init__(
        self,
        inputs: Tensor,
        targets: Tensor,
        transform: Callable[[Tensor], Tensor] | None = None,
        clean_targets: Tensor | None = None,
    ):
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs = inputs
        self.targets = targets.long()
        self.transform = transform
        self.clean_targets = clean_targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x = self.inputs[index]
        if self.transform is not None:
            x = self.transform(x)
        return x, self.targets[index]


def stack_batch(batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Stack same-shape examples into ``(inputs, target)``: a tuple, where torch's default collation gives a list."""
    inputs, targets = zip(*batch)
    return torch.stack(inputs), torch.stack(targets)


class EncodedDataset(Dataset):
    """Pre-tokenized examples: ``({"input_ids": ids}, target)`` or ``(ids, target)`` when ``as_dict`` is False.

    ``targets`` holds one class per example (text) or one id per position (token, lm).
    """

    def __init__(
        self,
        input_ids: Sequence[Sequence[int]],
        targets: Sequence[int] | Sequence[Sequence[int]] | Tensor,
        as_dict: bool = True,
        clean_targets: Tensor | None = None,
    ):
        if len(input_ids) != len(targets):
            raise ValueError(f"{len(input_ids)} sequences but {len(targets)} targets")
        self.input_ids = [torch.as_tensor(ids, dtype=torch.long) for ids in input_ids]
        self.targets: Tensor | list[Tensor]
        if isinstance(targets, Tensor) or (len(targets) and isinstance(targets[0], int)):
            self.targets = torch.as_tensor(targets, dtype=torch.long)
        else:
            self.targets = [torch.as_tensor(t, dtype=torch.long) for t in targets]
        self.as_dict = as_dict
        self.clean_targets = clean_targets

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> tuple[Any, Tensor]:
        ids = self.input_ids[index]
        return ({"input_ids": ids} if self.as_dict else ids), self.targets[index]


class PadCollator:
    """Pad a list of ``(inputs, target)`` to the longest sequence of the batch.

    Inputs are a dict with ``input_ids`` (gets an ``attention_mask``) or a bare id tensor.
    Scalar targets are stacked; sequence targets are padded with ``ignore_index``. A class
    (not a closure) so DataLoader workers can pickle it.
    """

    def __init__(self, pad_token_id: int, ignore_index: int = IGNORE_INDEX):
        self.pad_token_id = int(pad_token_id)
        self.ignore_index = ignore_index

    def __call__(self, batch: list[tuple[Any, Tensor]]) -> tuple[Any, Tensor]:
        inputs, targets = zip(*batch)
        if targets[0].dim() == 0:
            target = torch.stack(targets)
        else:
            target = pad_sequence(list(targets), batch_first=True, padding_value=self.ignore_index)
        if isinstance(inputs[0], dict):
            ids = [item["input_ids"] for item in inputs]
            padded = pad_sequence(ids, batch_first=True, padding_value=self.pad_token_id)
            lengths = torch.tensor([len(i) for i in ids])
            mask = (torch.arange(padded.shape[1])[None, :] < lengths[:, None]).long()
            return {"input_ids": padded, "attention_mask": mask}, target
        return pad_sequence(list(inputs), batch_first=True, padding_value=self.pad_token_id), target

    def __repr__(self) -> str:
        return f"PadCollator(pad_token_id={self.pad_token_id}, ignore_index={self.ignore_index})"
