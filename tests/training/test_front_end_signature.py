"""One front-end signature (issue 19): CotStep, CotModule and CotTrainer take every CotConfig
field under its own name and default, pass it on, and CotTrainer trains with ``primary_loss``."""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import pytest
import torch
from torch import nn

from complement.losses import focal_loss
from complement.training import CotStep
from complement.training.objective import CotConfig
from tests.helpers.hf import DictData, TinyHF, training_args
from tests.helpers.tiny import assert_same_parameters, make_data, make_model

CONFIG_FIELDS = dataclasses.fields(CotConfig)
# Every field away from its default, so that a front end that drops one is caught.
NON_DEFAULT = {
    "mode": "joint",
    "complement_loss": "guided_complement_entropy",
    "complement_weight": 0.5,
    "ignore_index": -1,
    "complement_loss_kwargs": {"alpha": 0.2},
    "primary_loss": "focal",
    "primary_loss_kwargs": {"gamma": 1.0},
}


def front_end(name: str) -> type:
    if name == "CotStep":
        return CotStep
    if name == "CotModule":
        pytest.importorskip("lightning")
        from complement.lightning import CotModule

        return CotModule
    pytest.importorskip("transformers")
    from complement.hf import CotTrainer

    return CotTrainer


FRONT_ENDS = ["CotStep", "CotModule", "CotTrainer"]


def test_non_default_values_cover_every_field():
    assert set(NON_DEFAULT) == {f.name for f in CONFIG_FIELDS}
    for f in CONFIG_FIELDS:
        assert NON_DEFAULT[f.name] != config_default(f), f.name


def config_default(f: dataclasses.Field):
    assert f.default is not dataclasses.MISSING, f"CotConfig.{f.name} needs a plain default"
    return f.default


@pytest.mark.parametrize("name", FRONT_ENDS)
def test_front_end_takes_every_config_field_with_its_default(name):
    parameters = inspect.signature(front_end(name)).parameters
    missing = [f.name for f in CONFIG_FIELDS if f.name not in parameters]
    assert not missing, f"{name} lacks the CotConfig option(s) {missing}"
    for f in CONFIG_FIELDS:
        parameter = parameters[f.name]
        assert parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY), (name, f.name)
        assert parameter.default == config_default(f), (
            f"{name}'s {f.name} defaults to {parameter.default!r}; CotConfig's to {config_default(f)!r}"
        )


# --- the options reach the objective -------------------------------------------------------


def objective_config(name: str, tmp_path, **options) -> CotConfig:
    cls = front_end(name)
    if name == "CotStep":
        model = make_model()
        return cls(model, torch.optim.SGD(model.parameters(), lr=0.1), **options).objective.config
    if name == "CotModule":
        return cls(**options).objective.config
    return cls(model=TinyHF(), args=training_args(tmp_path), **options).cot_objective.config


@pytest.mark.parametrize("name", FRONT_ENDS)
def test_front_end_passes_every_option_to_the_objective(name, tmp_path):
    assert objective_config(name, tmp_path) == CotConfig()
    assert objective_config(name, tmp_path, **NON_DEFAULT) == CotConfig(**NON_DEFAULT)


# --- CotTrainer: the deprecated cot_mode, primary_loss, logged names ---------------------------


def test_cot_mode_is_a_deprecated_alias_of_mode(tmp_path):
    trainer_class = front_end("CotTrainer")
    x, y = make_data(n=16)
    with pytest.warns(DeprecationWarning, match=r"cot_mode=.*deprecated.*mode="):
        old = trainer_class(model=TinyHF(), args=training_args(tmp_path / "old"), train_dataset=DictData(x, y),
                            cot_mode="joint")  # fmt: skip
    assert old.cot_objective.mode == "joint"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new name does not warn
        new = trainer_class(model=TinyHF(), args=training_args(tmp_path / "new"), train_dataset=DictData(x, y),
                            mode="joint")  # fmt: skip
    old.train()
    new.train()
    assert_same_parameters(old.model.net, new.model.net, atol=0)


@pytest.mark.parametrize("mode", ["alternate", "joint"])
def test_mode_and_cot_mode_together_are_refused(tmp_path, mode):
    trainer_class = front_end("CotTrainer")
    with pytest.raises(TypeError, match="both mode=.* and cot_mode=.*pass mode only"):
        trainer_class(model=TinyHF(), args=training_args(tmp_path), mode=mode, cot_mode="joint")


@pytest.mark.parametrize("mode", ["alternate", "off"])
def test_cot_trainer_trains_phase_1_on_the_primary_loss(tmp_path, mode):
    trainer_class = front_end("CotTrainer")
    x, y = make_data(n=16)
    trainer = trainer_class(
        model=TinyHF(),
        args=training_args(tmp_path, num_train_epochs=1),
        train_dataset=DictData(x, y),
        mode=mode,
        primary_loss="focal",
        primary_loss_kwargs={"gamma": 1.5},
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 1 and ("cot_loss" in logged[0]) == (mode != "off")
    with torch.no_grad():
        logits = make_model()(x)  # the weights phase 1 of the first step saw
    expected = focal_loss(logits, y, gamma=1.5).item()
    assert logged[0]["train_loss"] == pytest.approx(expected, abs=2e-6)
    cross_entropy = nn.functional.cross_entropy(logits, y).item()
    assert abs(expected - cross_entropy) > 1e-2  # the check tells focal from cross-entropy


def test_cot_trainer_with_a_primary_loss_equals_a_hand_written_loop(tmp_path):
    trainer_class = front_end("CotTrainer")
    x, y = make_data(n=16)
    model = TinyHF()
    trainer = trainer_class(
        model=model, args=training_args(tmp_path), train_dataset=DictData(x, y), mode="off", primary_loss="focal"
    )
    trainer.train()
    assert trainer.state.global_step == 3
    reference = make_model()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        focal_loss(reference(x), y).backward()
        optimizer.step()
    assert_same_parameters(model.net, reference, atol=1e-10)


@pytest.mark.parametrize("mode", ["alternate", "joint", "off"])
def test_cot_trainer_logs_the_names_cot_step_returns(tmp_path, mode):
    trainer_class = front_end("CotTrainer")
    x, y = make_data(n=16)
    trainer = trainer_class(
        model=TinyHF(), args=training_args(tmp_path, num_train_epochs=1), train_dataset=DictData(x, y), mode=mode
    )
    trainer.train()
    (entry,) = [entry for entry in trainer.state.log_history if "loss" in entry]
    model = make_model()
    returned = CotStep(model, torch.optim.SGD(model.parameters(), lr=0.1), mode=mode).step((x, y))
    assert set(returned) <= set(entry)
    assert "train_ce_loss" not in entry
    for name, value in returned.items():
        assert entry[name] == pytest.approx(float(value), abs=2e-6), name
