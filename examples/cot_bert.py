"""The blog's CotBert on Lightning 2.x or the Hugging Face Trainer, offline.

"Complement Objective Training with Pytorch Lightning" fine-tunes a sequence classifier
with a CE step and a COT step per batch, one shared Adam (lr 1e-4) and ReduceLROnPlateau
on train_loss every 10 steps. Here the classifier is the packaged MiniLM-L6 and the
data are the CrowdFlower tweets (3 classes), both offline.

    python examples/cot_bert.py --frontend lightning            # CotModule
    python examples/cot_bert.py --frontend hf                   # CotTrainer
    python examples/cot_bert.py --no-cot                        # the CE baseline
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader

from complement.experiments.tasks import build_task
from complement.lightning import CotModule


class CotBert(CotModule):
    def __init__(self, task, use_cot: bool = True, lr: float = 1e-4):
        super().__init__(mode="alternate" if use_cot else "off", num_classes=task.num_classes)
        self.bert = task.build_model()  # AutoModelForSequenceClassification.from_pretrained(MiniLM path)
        self.lr = lr

    def forward(self, inputs):
        return self.bert(inputs)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)  # shared by the CE and COT steps
        plateau = {
            "scheduler": ReduceLROnPlateau(optimizer),
            "interval": "step",
            "frequency": 10,
            "monitor": "train_loss",
        }
        return [optimizer], [plateau]


def run_lightning(task, args) -> None:
    model = CotBert(task, use_cot=not args.no_cot)
    trainer = pl.Trainer(
        accelerator="auto",
        max_epochs=args.epochs,
        max_steps=args.max_steps,
        logger=False,
        enable_checkpointing=False,
        log_every_n_steps=5,
    )
    train = DataLoader(task.train, batch_size=args.batch_size, shuffle=True, collate_fn=task.collate_fn)
    val = DataLoader(task.val, batch_size=64, collate_fn=task.collate_fn)
    trainer.fit(model, train, val)
    print({k: round(float(v), 4) for k, v in trainer.callback_metrics.items()})


def run_hf(task, args) -> None:
    from transformers import TrainingArguments

    from complement.hf import CotTrainer

    def collate(items):  # the task's (inputs, target) batches as the Trainer's dicts with "labels"
        inputs, target = task.collate_fn(items)
        return {**inputs, "labels": target}

    class Classifier(torch.nn.Module):  # the Trainer passes the dict as keyword arguments
        def __init__(self):
            super().__init__()
            self.bert = task.build_model()

        def forward(self, **inputs):
            return {"logits": self.bert(inputs)}

    training = TrainingArguments(
        output_dir="runs/cot_bert_hf",
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=1e-4,
        lr_scheduler_type="constant",
        report_to=[],
        logging_steps=1 if 0 < args.max_steps < 5 else 5,
        save_strategy="no",
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = CotTrainer(
        model=Classifier(),
        args=training,
        train_dataset=task.train,
        data_collator=collate,
        mode="off" if args.no_cot else "alternate",
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if "loss" in entry and "train_loss" in entry:  # a logging step's entry (the run's summary has no "loss")
            print({k: entry[k] for k in ("step", "loss", "train_loss", "cot_loss", "learning_rate") if k in entry})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frontend", choices=("lightning", "hf"), default="lightning")
    parser.add_argument("--no-cot", action="store_true", help="train the cross-entropy baseline")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=-1)
    args = parser.parse_args()
    task = build_task("tweets", seed=0, train_size=args.train_size, val_size=200, test_size=200, max_length=48)
    (run_hf if args.frontend == "hf" else run_lightning)(task, args)


if __name__ == "__main__":
    main()
