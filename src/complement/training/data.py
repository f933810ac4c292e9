"""A training loader whose position and shuffle order resume exactly, mid-epoch or between epochs.

Lightning saves the state of a ``torchdata`` ``StatefulDataLoader`` in its checkpoints
(Lightning #19361), so a run resumed mid-epoch continues with the next batch instead of
replaying the epoch's first ones. Two traps remain, found by resuming real runs:

- A plain ``StatefulDataLoader(dataset, shuffle=True, generator=g)`` shuffles from one
  running generator stream. When a checkpoint lies at an epoch boundary, Lightning does
  not restore the loader (its fit loop is not "restarting" then), so the next epoch
  starts from the fresh generator and repeats the first epoch's order.
- Even when it does restore, the DataLoader draws each epoch's worker base seed from
  that generator just after the sampler snapshots it, so after a restore that draw is
  lost and every later epoch's order differs (torchdata 0.11).

:func:`resumable_loader` avoids both: its sampler, torchdata's ``StatefulDistributedSampler``
with one replica, shuffles each epoch with ``seed + epoch`` (as ``DistributedSampler``
does), so an epoch's order depends on nothing but its number, and it saves how far the
epoch got. Lightning calls ``set_epoch`` at every epoch start; the permutation is drawn
lazily, at the epoch's first batch, after that call. Without Lightning, call
``loader.sampler.set_epoch(epoch)`` at the start of each epoch, as with ``DistributedSampler``.

A checkpoint taken after an epoch's last batch (at validation end, or a step checkpoint
that falls there) holds a loader state with the whole epoch yielded; restoring it would
leave the next epoch an exhausted iterator, and Lightning would train it on no batch at
all. :class:`ResumableLoader` ignores such a state: the next epoch starts afresh.

Exact for ``num_workers=0``; with workers, the workers' random streams after a resume
come from a fresh base seed (augmentations drawn in workers then differ).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler


class ResumableLoader(StatefulDataLoader):
    """A ``StatefulDataLoader`` that does not restore a finished epoch (see the module docstring)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        yielded = state_dict.get("_num_yielded")
        try:
            batches = len(self)
        except TypeError:  # an iterable dataset of unknown length
            batches = None
        if batches is not None and yielded is not None and yielded >= batches:
            return
        super().load_state_dict(state_dict)


def resumable_loader(
    dataset: Dataset, batch_size: int, *, seed: int, shuffle: bool = True, **kwargs: Any
) -> ResumableLoader:
    """A ``StatefulDataLoader`` over ``dataset`` whose order in epoch ``e`` is a function of ``seed + e``.

    ``kwargs`` go to the loader (``collate_fn``, ``num_workers``, ``drop_last``, ...)."""
    for reserved in ("sampler", "shuffle", "generator", "batch_sampler"):
        if reserved in kwargs:
            raise TypeError(f"resumable_loader sets {reserved!r} itself (from seed and shuffle); do not pass it")
    sampler = StatefulDistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    # Worker base seeds come from their own generator, never from the global one.
    base_seeds = torch.Generator().manual_seed(seed)
    with warnings.catch_warnings():  # torchdata 0.11 calls torch.set_vital, deprecated in recent torch
        warnings.filterwarnings("ignore", message=".*set_vital.*is deprecated")
        return ResumableLoader(dataset, batch_size=batch_size, sampler=sampler, generator=base_seeds, **kwargs)
