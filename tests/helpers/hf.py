"""A tiny Hugging Face-style model, its dict dataset and offline TrainingArguments for CotTrainer tests."""

from __future__ import annotations

from torch import nn
from torch.utils.data import Dataset

from tests.helpers.tiny import make_model


class DictData(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class TinyHF(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = make_model()

    def forward(self, x):
        return {"logits": self.net(x)}


def training_args(tmp_path, **overrides):
    """CPU, plain SGD at a constant rate, no clipping, logging every step, nothing saved."""
    from transformers import TrainingArguments  # the text extra: imported by the tests that need it

    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        num_train_epochs=3,
        learning_rate=0.1,
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    return TrainingArguments(**{**base, **overrides})


def save_tiny_bert(folder, vocab_size: int = 50):
    """A tiny BERT (1 layer, hidden 8) saved as a local model folder; returns the folder."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    return folder
