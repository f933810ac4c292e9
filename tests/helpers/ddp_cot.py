"""Run by tests/test_ddp.py: COT under Lightning's DDP strategy, 2 CPU processes on gloo.

Each process gets half of each global batch (DistributedSampler, no shuffle); rank 0
saves the final parameters to the path in argv[1]."""

import sys

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, __file__.rsplit("/", 3)[0])  # run as a script: the repository root
from tests.helpers.tiny import make_data
from tests.training.test_lightning import TinyCot

if __name__ == "__main__":
    x, y = make_data(n=32)
    module = TinyCot("two", mode=sys.argv[2] if len(sys.argv) > 2 else "alternate")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        precision="64-true",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    data = TensorDataset(x, y)
    sampler = DistributedSampler(data, num_replicas=2, rank=trainer.global_rank, shuffle=False)
    trainer.fit(module, DataLoader(data, batch_size=4, sampler=sampler))
    if trainer.global_rank == 0:
        torch.save({name: p.detach() for name, p in module.net.named_parameters()}, sys.argv[1])
