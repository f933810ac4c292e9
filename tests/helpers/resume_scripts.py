"""Training scripts for the front ends' kill-and-resume tests (run as subprocesses).

    python resume_scripts.py {lightning,torch,hf} OUT_DIR [--kill-at STEP] [--resume]

Each trains the tiny model of ``tiny.py`` with dropout, the authors' two optimizers and
gradient accumulation over a shuffled resumable loader, checkpointing every 3 optimizer
steps; ``--kill-at`` SIGKILLs the process after that optimizer step (before its
checkpoint); ``--resume`` continues from the newest checkpoint. At the end it saves the
parameters and the batches it trained on (targets, per epoch) to OUT_DIR/result.pt.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repository root

from tests.helpers.tiny import make_data, make_model, make_optimizers  # noqa: E402

EPOCHS, BATCH, ACCUMULATE, EVERY = 3, 4, 2, 3
SEEN: list[tuple[int, list[int]]] = []


def model_with_dropout() -> nn.Module:
    net = make_model()
    net.insert(1, nn.Dropout(0.3))
    return net


def data():
    x, y = make_data(n=44)  # 11 batches an epoch: the last accumulation group is short
    return TensorDataset(x, y)


def die_if(step: int, kill_at: int | None) -> None:
    if kill_at is not None and step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


def lightning(out: Path, kill_at: int | None, resume: bool) -> nn.Module:
    import lightning.pytorch as pl

    from complement.lightning import AtomicCheckpointIO, CotCheckpoint, CotModule, resumable_loader

    class Tiny(CotModule):
        def __init__(self):
            super().__init__(accumulate_grad_batches=ACCUMULATE, num_classes=5)
            self.net = model_with_dropout()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            SEEN.append((self.current_epoch, batch[1].tolist()))
            return super().training_step(batch, batch_idx)

        def configure_optimizers(self):
            optimizers = make_optimizers(self, "two")
            return optimizers, [torch.optim.lr_scheduler.StepLR(optimizers[0], step_size=1, gamma=0.7)]

    class Kill(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            die_if(trainer.global_step, kill_at)

    torch.manual_seed(0)
    module = Tiny()
    checkpoints = out / "checkpoints"
    trainer = pl.Trainer(
        accelerator="cpu", precision="64-true", max_epochs=EPOCHS, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, plugins=[AtomicCheckpointIO()],
        callbacks=[Kill(), CotCheckpoint(checkpoints, filename="{step}", every_n_train_steps=EVERY, save_top_k=1)],
    )  # fmt: skip
    latest = max(checkpoints.glob("*.ckpt"), key=lambda p: int(p.stem.split("=")[1]), default=None)
    val = torch.utils.data.DataLoader(data(), batch_size=22)
    trainer.fit(module, resumable_loader(data(), BATCH, seed=7), val, ckpt_path=latest if resume else None,
                weights_only=True)  # fmt: skip
    return module.net


def plain_torch(out: Path, kill_at: int | None, resume: bool) -> nn.Module:
    from complement.training import CotStep, resumable_loader

    torch.manual_seed(0)
    model = model_with_dropout()
    cot = CotStep(model, make_optimizers(model, "two"))
    loader = resumable_loader(data(), BATCH, seed=7)
    path, start_epoch = out / "cot.pt", 0
    if resume and path.exists():
        saved = torch.load(path, weights_only=True)
        cot.load_state_dict(saved["cot"])
        start_epoch = saved["epoch"]
        loader.sampler.set_epoch(start_epoch)
        loader.load_state_dict(saved["loader"])
    for epoch in range(start_epoch, EPOCHS):
        loader.sampler.set_epoch(epoch)
        group = []
        for batch in loader:
            SEEN.append((epoch, batch[1].tolist()))
            group.append(batch)
            if len(group) < ACCUMULATE:
                continue
            cot.step(micro_batches=group)
            group = []
            die_if(cot.steps, kill_at)
            if cot.steps % EVERY == 0:
                temporary = path.with_suffix(".tmp")
                torch.save({"cot": cot.state_dict(), "loader": loader.state_dict(), "epoch": epoch}, temporary)
                os.replace(temporary, path)
        if group:
            cot.step(micro_batches=group)
    return model


def hf(out: Path, kill_at: int | None, resume: bool) -> nn.Module:
    from transformers import TrainerCallback, TrainingArguments

    from complement.hf import CotTrainer

    class DictData(torch.utils.data.Dataset):
        def __init__(self):
            self.inner = data()

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            x, y = self.inner[i]
            return {"x": x, "labels": y}

    class TinyHF(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model_with_dropout()

        def forward(self, x):
            SEEN.append((-1, []))
            return {"logits": self.net(x)}

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            die_if(state.global_step, kill_at)

    torch.manual_seed(0)
    model = TinyHF()
    args = TrainingArguments(
        output_dir=str(out / "hf"), per_device_train_batch_size=BATCH, gradient_accumulation_steps=ACCUMULATE,
        num_train_epochs=EPOCHS, learning_rate=0.1, optim="sgd", lr_scheduler_type="linear", max_grad_norm=1.0,
        save_strategy="steps", save_steps=EVERY, save_total_limit=1, report_to=[], use_cpu=True,
        remove_unused_columns=False, disable_tqdm=True, seed=0, logging_steps=100,
    )  # fmt: skip
    trainer = CotTrainer(model=model, args=args, train_dataset=DictData(), callbacks=[Kill()])
    trainer.train(resume_from_checkpoint=True if resume else None)
    return model.net


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("front_end", choices=["lightning", "torch", "hf"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train = {"lightning": lightning, "torch": plain_torch, "hf": hf}[args.front_end]
    net = train(args.out, args.kill_at, args.resume)
    torch.save({"params": [p.detach() for p in net.parameters()], "seen": SEEN}, args.out / "result.pt")


if __name__ == "__main__":
    main()
