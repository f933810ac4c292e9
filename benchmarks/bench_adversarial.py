"""Adversarial training and attack evaluation: their cost against the baselines measured in the same run.

Run:  python -m benchmarks.bench_adversarial [--quick] [--no-write]

1. Training steps of a small MNIST CNN (batch 128), timed round-robin (median): a PGD-10
   adversarial-training step (``pgd_at``), a TRADES step (10 KL steps) and COT with PGD-10,
   each divided by a plain CE step. The floor of PGD-10 is about 11x (ten attack forward and
   backward passes, then the training one).
2. Attack throughput: PGD-20 on 1,000 images with :func:`complement.robustness.pgd`, against
   the hand-written loop of the tests and ART's ``ProjectedGradientDescent`` (when installed),
   as images per second.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks._common import STEADY_MALLOC, interleaved_medians, machine, steady_allocator, write_section
from complement.robustness import pgd
from complement.training import AdversarialTraining, CotStep


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10),
    )  # fmt: skip


def training_steps(reps: int) -> dict[str, float]:
    torch.manual_seed(0)
    batch = (torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)))
    arms = {
        "CE": ("off", None),
        "PGD-10 AT": ("off", AdversarialTraining("pgd_at", eps=0.3, steps=10, step_size=0.075)),
        "TRADES (10 steps)": ("off", AdversarialTraining("trades", eps=0.3, steps=10, step_size=0.075)),
        "COT + PGD-10": ("alternate", AdversarialTraining("pgd_at", eps=0.3, steps=10, step_size=0.075)),
    }
    steps = {}
    for name, (mode, adversarial) in arms.items():
        model = cnn()
        step = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.01), mode=mode, adversarial=adversarial)
        steps[name] = lambda step=step: step.step(batch)
    return interleaved_medians(steps, reps)


def reference_pgd(model, x, y, eps, alpha, steps):
    adversarial = x.clone()
    for _ in range(steps):
        adversarial.requires_grad_(True)
        (gradient,) = torch.autograd.grad(F.cross_entropy(model(adversarial), y, reduction="sum"), adversarial)
        with torch.no_grad():
            adversarial = torch.min(torch.max(adversarial + alpha * gradient.sign(), x - eps), x + eps).clamp(0, 1)
    return adversarial.detach()


def attack_throughput(images: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = cnn().eval()
    x, y = torch.rand(images, 1, 28, 28), torch.randint(0, 10, (images,))
    arms = {
        "complement.robustness.pgd": lambda: pgd(model, x, y, 0.3, steps=20, step_size=0.01, random_start=False),
        "hand-written loop": lambda: reference_pgd(model, x, y, 0.3, 0.01, 20),
    }
    try:
        import numpy as np
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                       nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")  # fmt: skip
        art_pgd = ProjectedGradientDescent(classifier, norm=np.inf, eps=0.3, eps_step=0.01, max_iter=20,
                                           num_random_init=0, batch_size=images, verbose=False)  # fmt: skip
        arms["ART ProjectedGradientDescent"] = lambda: art_pgd.generate(x=x.numpy(), y=y.numpy())
    except ImportError:
        pass
    seconds = {}
    for name, run in arms.items():
        run()  # warm-up
        start = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - start
    return {name: images / value for name, value in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and images")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    args = parser.parse_args()
    steady_allocator()
    torch.set_num_threads(1)
    steps = training_steps(3 if args.quick else 9)
    rate = attack_throughput(200 if args.quick else 1000)
    base = steps["CE"]
    lines = [
        "Command: `python -m benchmarks.bench_adversarial` (one thread; "
        f"malloc {', '.join(f'{k}={v}' for k, v in STEADY_MALLOC.items())}).",
        f"Machine: {machine()}.",
        "",
        "A small MNIST CNN (two conv layers, 100 hidden units), batch 128, eps 0.3, median step time:",
        "",
        "| step | ms | / CE step |",
        "|---|---:|---:|",
        *[f"| {name} | {1000 * value:.1f} | {value / base:.2f}x |" for name, value in steps.items()],
        "",
        "PGD-10's floor is about 11x (ten attack forward/backward passes, then the training one); COT adds",
        "its complement phase on the same adversarial examples (one more forward/backward).",
        "",
        f"PGD-20 on {1000 if not args.quick else 200} images (no random start), images per second:",
        "",
        "| attack | images/s | / hand-written loop |",
        "|---|---:|---:|",
        *[f"| {name} | {value:.0f} | {value / rate['hand-written loop']:.2f}x |" for name, value in rate.items()],
    ]
    body = "## Adversarial training and attack evaluation\n\n" + "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section("adversarial", body)


if __name__ == "__main__":
    main()
