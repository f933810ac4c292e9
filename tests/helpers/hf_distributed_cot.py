"""Run by tests/test_fsdp.py: COT through the Hugging Face CotTrainer in 2 processes under
torchrun, each with half of every global batch; without torchrun, one process on the
global batch. On CPU Accelerate runs DDP (it has no FSDP for CPU processes: TrainingArguments'
``fsdp`` is ignored there); with ``ENGINE=fsdp`` on 2 GPUs, Accelerate's FSDP2.

    python hf_distributed_cot.py OUT MODE HEAD [FIND_UNUSED]
    python hf_distributed_cot.py OUT_DIR --cases MODE:HEAD[:FIND_UNUSED] ...   # one launch, several cases

HEAD: ``logits``; ``linear`` (the model returns ``LinearLogits(hidden, self.head)``); or
``fused`` (a tiny GPT-2 with ``CotTrainer(fused_lm_head=True)``). FIND_UNUSED ``true`` or
``false`` sets ``ddp_find_unused_parameters``; unset, the Trainer's default (search).
Rank 0 saves the full parameters to OUT."""

from __future__ import annotations

import os
import sys

import torch
import transformers
from torch import nn
from torch.utils.data import Dataset

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))  # run as a script: the repository root
from complement.hf import CotTrainer
from complement.training import LinearLogits
from tests.helpers.fsdp_cot import HIDDEN, VOCAB

GLOBAL_BATCH, STEPS, LENGTH = 8, 4, 6


class Head(nn.Linear):
    """The output layer, a class of its own so FSDP's auto-wrap policy shards it as a unit."""


class Body(nn.Sequential):
    pass


class TinyLM(nn.Module):
    def __init__(self, head: str):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.body = Body(nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
        self.head = Head(HIDDEN, VOCAB)
        self.linear_logits = head == "linear"

    def forward(self, input_ids):
        hidden = self.body(self.embed(input_ids))
        return {"logits": LinearLogits(hidden, self.head) if self.linear_logits else self.head(hidden)}


class Tokens(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, VOCAB, (GLOBAL_BATCH * STEPS, LENGTH), generator=g)
        self.labels = torch.randint(0, VOCAB, (GLOBAL_BATCH * STEPS, LENGTH), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def run_case(out: str, mode: str, head: str, find_unused: bool | None) -> None:
    """Train one case with the Trainer; rank 0 saves the full parameters to ``out``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    fsdp = os.environ.get("ENGINE") == "fsdp"
    sharding = {}
    if fsdp and world > 1:
        wrap = ["GPT2Block"] if head == "fused" else ["Head", "Body"]
        sharding = {"fsdp": True, "fsdp_config": {"version": 2, "transformer_layer_cls_to_wrap": wrap}}
    args = transformers.TrainingArguments(
        output_dir=os.path.join(os.path.dirname(out), "hf"),
        per_device_train_batch_size=GLOBAL_BATCH // world,
        num_train_epochs=1,
        learning_rate=0.1,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        report_to=[],
        save_strategy="no",
        use_cpu=not fsdp,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=0,
        ddp_find_unused_parameters=find_unused,
        **sharding,
    )
    torch.manual_seed(0)
    options = {}
    if head == "fused":
        config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, n_embd=HIDDEN, n_layer=1, n_head=2,
                                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)  # fmt: skip
        model = transformers.GPT2LMHeadModel(config)
        options = {"causal_lm": True, "fused_lm_head": True}
    else:
        model = TinyLM(head)
    trainer = CotTrainer(model=model, args=args, train_dataset=Tokens(), mode=mode, **options)
    trainer.train()
    parameters = {
        name: (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().cpu().clone()
        for name, p in model.named_parameters()
    }
    if trainer.args.process_index == 0:
        torch.save(parameters, out)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # rank 0's file is written before any rank goes on


def main() -> None:
    unused = {"true": True, "false": False}
    if sys.argv[2] == "--cases":
        os.makedirs(sys.argv[1], exist_ok=True)
        for case in sys.argv[3:]:
            mode, head, *rest = case.split(":")
            run_case(
                os.path.join(sys.argv[1], f"{case.replace(':', '-')}.pt"),
                mode,
                head,
                unused.get(rest[0]) if rest else None,
            )
    else:
        run_case(sys.argv[1], sys.argv[2], sys.argv[3], unused.get(sys.argv[4]) if len(sys.argv) > 4 else None)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        sys.stderr.flush()
        os._exit(0)  # see fsdp_cot.py: gloo's threads may abort the interpreter's shutdown


if __name__ == "__main__":
    main()
