"""API results that used to be silent (issue 20, item 16): each now warns or fails, naming the fix."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import complement
from complement.lightning import CotModule
from complement.training import CotConfig, CotStep
from complement.training.objective import CotObjective
from tests.helpers.tiny import NUM_CLASSES, NUM_FEATURES, make_data, make_model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


# --- a. an optimizer over none of the model's parameters ---------------------------------


def test_an_optimizer_over_none_of_the_models_parameters_is_refused():
    model = make_model()
    stranger = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"the optimizer holds none of the model's trainable parameters.*model\.par"):
        CotStep(model, torch.optim.SGD([stranger], lr=0.1))
    good = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"optimizers\[1\] holds none of the model's trainable parameters"):
        CotStep(model, [good, torch.optim.SGD([stranger], lr=0.1)])


def test_an_optimizer_with_some_parameters_outside_the_model_warns():
    model = make_model()
    stranger = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.warns(UserWarning, match=r"1 of the optimizer's 5 parameters are not the model's"):
        CotStep(model, torch.optim.SGD([*model.parameters(), stranger], lr=0.1))


def test_a_partly_frozen_model_with_all_its_parameters_in_the_optimizer_is_fine():
    model = make_model()
    model[0].requires_grad_(False)  # a frozen backbone, the optimizer over model.parameters(): common
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1)).step(make_data(n=8))


class _Tiny(CotModule):
    def __init__(self, stranger: bool = False, **cot):
        super().__init__(**cot)
        self.net = make_model()
        self.stranger = stranger

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        params = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))] if self.stranger else self.parameters()
        return torch.optim.SGD(params, lr=0.1)


def _fit(module: CotModule) -> None:
    x, y = make_data(n=8)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        precision="64-true",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=4))


def test_cot_module_refuses_an_optimizer_over_none_of_its_parameters():
    with pytest.raises(ValueError, match=r"_Tiny: the optimizer holds none of the model's trainable parameters"):
        _fit(_Tiny(stranger=True))


# --- b. empty and all-ignored batches: 0, documented ---------------------------------------


def test_empty_and_all_ignored_batches_give_the_documented_zero():
    logits = torch.randn(4, 5, requires_grad=True)
    for target in (torch.full((4,), -100), None):
        z = logits if target is not None else logits[:0]
        t = target if target is not None else torch.zeros(0, dtype=torch.long)
        value = complement.complement_entropy(z, t)
        assert value.item() == 0.0
        assert math.isnan(F.cross_entropy(z, t).item())  # where torch gives NaN
    doc = complement.complement_entropy.__doc__ or ""
    assert "empty batch" in doc and "F.cross_entropy" in doc and "NaN" in doc
    assert "an empty batch or one whose targets are all `ignore_index`" in DOCS.read_text()


# --- c. two classes: the complement is one class, its entropy 0 ------------------------------


def _two_class_step(mode: str, **kwargs) -> list[warnings.WarningMessage]:
    torch.manual_seed(0)
    model = torch.nn.Linear(NUM_FEATURES, 2).double()
    x, y = make_data(n=8)
    cot = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode=mode, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            cot.step((x, y % 2))
    return [w for w in caught if "2 classes" in str(w.message)]


@pytest.mark.parametrize("mode", ["alternate", "joint"])
def test_two_classes_warn_once_that_the_complement_phase_does_nothing(mode):
    caught = _two_class_step(mode)
    assert len(caught) == 1 and caught[0].category is UserWarning
    text = str(caught[0].message)
    assert "identically 0" in text and 'mode="off"' in text and "primary_loss" in text


def test_two_classes_do_not_warn_in_mode_off():
    assert _two_class_step("off") == []


# --- d. a non-finite complement weight ------------------------------------------------------


@pytest.mark.parametrize("weight", [math.inf, -math.inf, math.nan])
def test_a_non_finite_complement_weight_is_refused(weight):
    with pytest.raises(ValueError, match=r"complement_weight must be a finite number >= 0; got"):
        CotConfig(complement_weight=weight)
    model = make_model()
    with pytest.raises(ValueError, match=r"complement_weight must be a finite number"):
        CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), complement_weight=weight)
    with pytest.raises(ValueError, match=r"complement_weight must be a finite number"):
        _Tiny(complement_weight=weight)


# --- e. a target outside the class range ----------------------------------------------------


@pytest.mark.parametrize("mode", ["alternate", "joint", "off"])
def test_a_target_outside_the_class_range_gets_the_shared_message(mode):
    model = make_model()
    cot = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode=mode)
    x, y = make_data(n=4)
    y[2] = 7
    with pytest.raises(ValueError) as info:
        cot.step((x, y))
    who, text = str(info.value).split(": ", 1)
    assert who == ("cross_entropy_and_complement_entropy" if mode == "joint" else "COT")  # joint: its one-pass op
    assert text == (
        f"target contains class index 7, outside the valid range [0, {NUM_CLASSES - 1}] for logits with "
        f"{NUM_CLASSES} classes (ignore_index=-100). Check that the label set matches the model's number of "
        "classes, and mark padding with ignore_index."
    )


def test_ignored_targets_pass_the_objectives_range_check():
    z, t = torch.randn(3, 5), torch.tensor([1, -100, 4])
    part = CotObjective(CotConfig(mode="off")).phase_loss("ce", z, t)
    torch.testing.assert_close(part.loss, F.cross_entropy(z, t))


# --- f. nothing trainable ---------------------------------------------------------------------


def test_a_frozen_model_is_refused_with_the_fix():
    model = make_model().requires_grad_(False)
    with pytest.raises(ValueError, match=r"no parameter of the model requires grad.*requires_grad_\(True\)"):
        CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_a_loss_that_does_not_depend_on_trainable_parameters_is_explained():
    model = make_model()
    cot = CotStep(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        logits_and_target=lambda m, batch: (m(batch[0]).detach(), batch[1]),
    )
    with pytest.raises(RuntimeError, match=r"does not depend on any trainable parameter.*torch\.no_grad"):
        cot.step(make_data(n=4))


def test_a_frozen_cot_module_is_refused_with_the_fix():
    module = _Tiny()
    module.requires_grad_(False)
    with pytest.raises(ValueError, match=r"_Tiny: no parameter of the model requires grad"):
        _fit(module)
