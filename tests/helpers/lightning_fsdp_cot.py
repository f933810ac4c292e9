"""Run by tests/test_fsdp.py: COT through CotModule on a model sharded with FSDP2 by
Lightning's ModelParallelStrategy (``configure_model`` applies ``fully_shard``), 2 CPU
processes on gloo, each with half of every global batch: the batches, model and optimizers
of fsdp_cot.py, so the result must equal fsdp_cot.py's single process.

    python lightning_fsdp_cot.py OUT MODE OPTIMIZERS HEAD [EPOCHS [save:PATH | resume:PATH]]

``save:PATH`` writes Lightning's sharded checkpoint (a torch.distributed.checkpoint folder)
at the end; ``resume:PATH`` continues from one (``fit(ckpt_path=PATH)``). The same batches
come every epoch. ``STRATEGY=fsdp`` runs Lightning's FSDP1 strategy on 2 GPUs instead.
Rank 0 saves the full parameters to OUT."""

from __future__ import annotations

import os
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # run as a script: the repository root
from complement.lightning import CotModule
from complement.training import LinearLogits
from tests.helpers.fsdp_cot import TinyLM, batches, full_parameters


class ShardedTinyLM(CotModule):
    def __init__(self, mode: str, optimizers: str, head: str):
        super().__init__(mode=mode)
        self.lm = TinyLM()
        self.optimizer_count = 2 if optimizers == "separate" else 1
        self.head = head

    def configure_model(self):
        mesh = self.device_mesh["data_parallel"]
        for layer in (self.lm.embed, self.lm.body, self.lm.head):
            fully_shard(layer, mesh=mesh)
        fully_shard(self.lm, mesh=mesh)

    def forward(self, tokens):
        hidden = self.lm.hidden(tokens)
        return LinearLogits(hidden, self.lm.head) if self.head == "linear" else self.lm.head(hidden)

    def configure_optimizers(self):
        opts = [torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9) for _ in range(self.optimizer_count)]
        return opts if self.optimizer_count == 2 else opts[0]


class Fsdp1TinyLM(ShardedTinyLM):
    """For Lightning's ``strategy="fsdp"``, which wraps the module itself."""

    def configure_model(self):
        pass


def main() -> None:
    out, mode, optimizers, head = sys.argv[1:5]
    epochs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    action, _, path = (sys.argv[6] if len(sys.argv) > 6 else "").partition(":")
    world = 2
    if os.environ.get("STRATEGY") == "fsdp":  # FSDP1: Lightning refuses it on CPU
        module, accelerator, strategy = Fsdp1TinyLM(mode, optimizers, head), "gpu", "fsdp"
    else:
        module, accelerator = ShardedTinyLM(mode, optimizers, head), "cpu"
        strategy = ModelParallelStrategy(data_parallel_size=world, tensor_parallel_size=1)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=world,
        strategy=strategy,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    rank = trainer.global_rank
    loader = torch.utils.data.DataLoader(list(batches(world, rank)), batch_size=None)
    trainer.fit(module, loader, ckpt_path=path if action == "resume" else None)
    if action == "save":
        trainer.save_checkpoint(path)
    if os.environ.get("STRATEGY") == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        with FullyShardedDataParallel.summon_full_params(trainer.strategy.model):
            parameters = {name: p.detach().clone() for name, p in module.lm.named_parameters()}
    else:
        parameters = full_parameters(module.lm)
    if rank == 0:
        torch.save({name: p.cpu() for name, p in parameters.items()}, out)
    torch.distributed.barrier()  # no rank tears gloo down while another still uses it
    torch.distributed.destroy_process_group()
    sys.stderr.flush()
    os._exit(0)  # see fsdp_cot.py: gloo's threads may abort the interpreter's shutdown


if __name__ == "__main__":
    main()
