"""Adversarial training inside the COT step: PGD-AT and TRADES against hand-written loops
(float64, exact), COT's complement phase on the same adversarial examples, the Lightning
front end equal to the plain one, and every bad input."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from complement.lightning import CotModule
from complement.training import AdversarialTraining, CotStep


def model_and_batches(seed: int = 0, steps: int = 3):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    g = torch.Generator().manual_seed(seed + 1)
    batches = [(torch.rand(8, 1, 3, 4, generator=g, dtype=torch.float64), torch.randint(0, 4, (8,), generator=g))
               for _ in range(steps)]  # fmt: skip
    return model, batches


def project(z, x, eps):
    return torch.min(torch.max(z, (x - eps).clamp(min=0)), (x + eps).clamp(max=1))


def reference_pgd(model, x, loss_of, eps, alpha, steps, start):
    adversarial = project(start, x, eps)
    for _ in range(steps):
        adversarial = adversarial.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss_of(model(adversarial)).sum(), adversarial)
        adversarial = project(adversarial + alpha * gradient.sign(), x, eps)
    return adversarial.detach()


def test_pgd_at_equals_madrys_loop_written_out():
    eps, steps, alpha = 0.1, 5, 0.03
    model, batches = model_and_batches()
    reference = copy.deepcopy(model)  # its own parameters
    ours = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.5), mode="off",
                   adversarial=AdversarialTraining("pgd_at", eps=eps, steps=steps, step_size=alpha))  # fmt: skip
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    torch.manual_seed(7)
    for batch in batches:
        ours.step(batch)
    torch.manual_seed(7)
    for x, y in batches:
        start = x + eps * (torch.rand(x.shape, dtype=x.dtype) * 2 - 1)
        adversarial = reference_pgd(reference, x, lambda z, y=y: F.cross_entropy(z, y, reduction="none"), eps, alpha,
                                    steps, start)  # fmt: skip
        optimizer.zero_grad()
        F.cross_entropy(reference(adversarial), y).backward()
        optimizer.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_trades_equals_the_authors_objective_written_out():
    eps, steps, alpha, beta = 0.1, 4, 0.03, 6.0
    model, batches = model_and_batches(1)
    reference = copy.deepcopy(model)  # its own parameters
    config = AdversarialTraining("trades", eps=eps, steps=steps, step_size=alpha, beta=beta)
    ours = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.5), mode="off", adversarial=config)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    torch.manual_seed(3)
    logs = [ours.step(batch) for batch in batches]
    torch.manual_seed(3)
    for x, y in batches:
        clean = reference(x).detach().softmax(1)
        start = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)

        def kl(z, clean=clean):
            return F.kl_div(z.log_softmax(1), clean, reduction="none").sum(1)

        adversarial = reference_pgd(reference, x, kl, eps, alpha, steps, start)
        optimizer.zero_grad()
        natural = reference(x)
        robust = F.kl_div(reference(adversarial).log_softmax(1), natural.softmax(1), reduction="batchmean")
        (F.cross_entropy(natural, y) + beta * robust).backward()
        optimizer.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    assert all("trades_kl" in entry for entry in logs)


def test_cot_trains_its_complement_phase_on_the_same_adversarial_examples():
    model, batches = model_and_batches(2, steps=1)
    seen = []

    def logits_and_target(module, batch):
        seen.append(batch[0].clone())
        return module(batch[0]), batch[1]

    config = AdversarialTraining("pgd_at", eps=0.1, steps=2)
    step = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), logits_and_target=logits_and_target,
                   adversarial=config)  # fmt: skip
    step.step(batches[0])
    # 2 attack forwards, then the CE phase's forward, then the complement phase's
    assert len(seen) == 4
    assert torch.equal(seen[2], seen[3]) and not torch.equal(seen[2], batches[0][0])
    assert float((seen[2] - batches[0][0]).abs().max()) <= 0.1 + 1e-12


class Classifier(CotModule):
    def __init__(self, model, adversarial):
        super().__init__(mode="alternate", adversarial=adversarial)
        self.net = model

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def test_cot_module_equals_cot_step_under_adversarial_training():
    import lightning.pytorch as pl

    config = AdversarialTraining("pgd_at", eps=0.1, steps=3, mean=[0.5], std=[0.25])
    model, batches = model_and_batches(3)
    twin = copy.deepcopy(model)
    torch.manual_seed(5)
    step = CotStep(twin, torch.optim.SGD(twin.parameters(), lr=0.5), adversarial=config)
    normalized = [((x - 0.5) / 0.25, y) for x, y in batches]
    for batch in torch.utils.data.DataLoader(normalized, batch_size=None):  # its iterator draws a seed, as Lightning's
        step.step(batch)
    torch.manual_seed(5)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    trainer.fit(Classifier(model, config), torch.utils.data.DataLoader(normalized, batch_size=None))
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-10, rtol=0)


def test_attacks_on_normalized_inputs_stay_within_eps_in_pixels():
    model, batches = model_and_batches(4, steps=1)
    x, y = batches[0]
    seen = []

    def logits_and_target(module, batch):
        seen.append(batch[0].clone())
        return module(batch[0]), batch[1]

    config = AdversarialTraining("pgd_at", eps=0.05, steps=2, mean=[0.5], std=[0.25])
    step = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode="off",
                   logits_and_target=logits_and_target, adversarial=config)  # fmt: skip
    step.step(((x - 0.5) / 0.25, y))
    pixels = seen[-1] * 0.25 + 0.5
    assert float((pixels - x).abs().max()) <= 0.05 + 1e-9


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: AdversarialTraining("fgsm_at"), ValueError, "unknown adversarial training 'fgsm_at'"),
        (lambda: AdversarialTraining(eps=2), ValueError, r"eps must be in \[0, 1\]"),
        (lambda: AdversarialTraining(steps=0), ValueError, "steps must be an integer >= 1"),
        (lambda: AdversarialTraining(beta=-1), ValueError, "beta must be a number >= 0"),
        (lambda: AdversarialTraining(mean=[0.5]), ValueError, "give mean and std together"),
    ],
)
def test_bad_adversarial_settings_get_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_trades_with_cot_steps_and_token_batches_are_refused():
    model, _ = model_and_batches()
    with pytest.raises(ValueError, match="TRADES is its own objective .* mode='off'"):
        CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), adversarial=AdversarialTraining("trades"))
    embedding = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 4))
    step = CotStep(embedding, torch.optim.SGD(embedding.parameters(), lr=0.1), mode="off",
                   adversarial=AdversarialTraining())  # fmt: skip
    with pytest.raises(TypeError, match="perturbs float image inputs; got torch.int64"):
        step.step((torch.randint(0, 10, (2, 3)), torch.tensor([0, 1])))


@pytest.mark.parametrize("kind, mode", [("pgd_at", "off"), ("trades", "off"), ("pgd_at", "alternate")])
def test_the_counted_passes_are_the_forward_passes_a_step_makes(kind, mode):
    # what equal-compute accounting relies on: phases + passes_per_batch forward passes a micro-batch
    model, batches = model_and_batches()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    config = AdversarialTraining(kind, eps=0.1, steps=4)
    step = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode=mode, adversarial=config)
    step.step(batches[0])
    phases = 2 if mode == "alternate" else 1
    assert len(calls) == phases + config.passes_per_batch == {"pgd_at": 5, "trades": 6}[kind] + (mode != "off")
