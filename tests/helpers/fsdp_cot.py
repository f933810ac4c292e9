"""Run by tests/test_fsdp.py: COT through CotStep on a model sharded with FSDP2 (fully_shard),
2 CPU processes on gloo, each with half of every global batch; with ``ENGINE=ddp``, wrapped
in DistributedDataParallel instead.

    python fsdp_cot.py OUT MODE OPTIMIZERS HEAD [CHECKPOINT_AT]
    python fsdp_cot.py OUT_DIR --cases MODE:OPTIMIZERS:HEAD ...   # several cases, one process group


HEAD is ``logits`` (materialized), ``linear`` (LinearLogits(hidden, model.head): the chunked
loss runs inside the sharded head's forward) or ``weight`` (LinearLogits(hidden, weight,
bias), refused under FSDP). With CHECKPOINT_AT, the run saves a sharded checkpoint
(torch.distributed.checkpoint) after that many steps, rebuilds the model, the optimizers
and CotStep from scratch, loads it and goes on. Rank 0 saves the full parameters to OUT.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # run as a script: the repository root
from complement.training import CotStep, LinearLogits

VOCAB, HIDDEN, STEPS = 23, 8, 6


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.body = nn.Sequential(nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
        self.head = nn.Linear(HIDDEN, VOCAB)
        self.double()

    def hidden(self, tokens):
        return self.body(self.embed(tokens))

    def forward(self, tokens):
        return self.hidden(tokens)


def batches(world: int, rank: int):
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        tokens, target = torch.randint(0, VOCAB, (8, 5), generator=g), torch.randint(0, VOCAB, (8, 5), generator=g)
        yield tokens[rank::world], target[rank::world]  # this rank's half of the global batch


def build(mode: str, optimizers: str, head: str, sharded: bool):
    model = TinyLM()
    wrapped: nn.Module = model
    if sharded and os.environ.get("ENGINE") == "ddp":
        wrapped = DistributedDataParallel(model)
    elif sharded:
        for layer in (model.embed, model.body, model.head):
            fully_shard(layer)
        fully_shard(model)
    count = 2 if optimizers == "separate" else 1
    opts = [torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) for _ in range(count)]

    def logits_and_target(m, batch):
        tokens, target = batch
        hidden = m(tokens)  # through the wrapper: DDP and FSDP act on the call
        if head == "weight":  # the tensors, not the layer: refused under FSDP
            return LinearLogits(hidden, model.head.weight, model.head.bias), target
        return (LinearLogits(hidden, model.head) if head == "linear" else model.head(hidden)), target

    cot = CotStep(wrapped, opts if count == 2 else opts[0], mode=mode, logits_and_target=logits_and_target)
    return model, cot


def full_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone() for n, p in model.named_parameters()
    }


def run_case(out: str, mode: str, optimizers: str, head: str, checkpoint_at: int | None, sharded: bool) -> None:
    """Train one case and save its full parameters to ``out`` (rank 0)."""
    world, rank = (dist.get_world_size(), dist.get_rank()) if sharded else (1, 0)
    model, cot = build(mode, optimizers, head, sharded)
    for step, batch in enumerate(batches(world, rank), start=1):
        cot.step(batch)
        if checkpoint_at == step:
            path = os.path.join(os.path.dirname(out), "checkpoint")
            dcp.save(cot.sharded_state_dict(), checkpoint_id=path)
            model, cot = build(mode, optimizers, head, sharded)  # a fresh start, as after a crash
            state = cot.sharded_state_dict()
            dcp.load(state, checkpoint_id=path)
            cot.load_sharded_state_dict(state)
    parameters = full_parameters(model)
    if rank == 0:
        torch.save(parameters, out)


def main() -> None:
    sharded = os.environ.get("WORLD_SIZE") is not None
    if sharded:
        dist.init_process_group("gloo")
    if sys.argv[2] == "--cases":  # each case from a fresh model (seeded) in the same processes: one start-up
        os.makedirs(sys.argv[1], exist_ok=True)
        for case in sys.argv[3:]:
            mode, optimizers, head = case.split(":")
            run_case(os.path.join(sys.argv[1], f"{mode}-{optimizers}-{head}.pt"), mode, optimizers, head, None, sharded)
    else:
        out, mode, optimizers, head = sys.argv[1:5]
        run_case(out, mode, optimizers, head, int(sys.argv[5]) if len(sys.argv) > 5 else None, sharded)
    if sharded:
        dist.barrier()  # no rank tears gloo down while another still uses it
        dist.destroy_process_group()
        # Now and then, under load, gloo's threads abort the interpreter's shutdown ("terminate called
        # without an active exception", SIGABRT) after all the work is done; skip that shutdown.
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
