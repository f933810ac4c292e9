"""Next-token prediction (language modelling) tasks over a word or character vocabulary.

================  ======================================================================
``tweets_lm``     the tweets of the ``tweets`` task (repeats removed), a document each.
``text_file_lm``  your text: a ``.txt`` file (one document a line) or the ``text_column``
                  of a CSV / TSV / JSONL file.
================  ======================================================================

Sizes (in documents), sources, licences and defaults are on each task's card (:mod:`.cards`).

Each document becomes ``<bos> w1 ... wn <eos>``, cut into windows of ``max_length + 1``
ids: the input is a window without its last id, the target without its first, so
position ``t`` predicts token ``t + 1``. The vocabulary is built from the *training*
documents only: ``<pad> <unk> <bos> <eos>`` and then the ``vocab_size - 4`` most frequent
tokens (ties alphabetical); other tokens become ``<unk>``. ``level="word"`` splits words
and punctuation (lower-cased, URLs as ``<url>``); ``level="char"`` uses characters.

The model is a small causal transformer (or a GRU, ``model="gru"``). The class count is
the vocabulary size, so ``vocab_size`` sets the width of the output head; ``d_model``,
``n_layers``, ``n_heads`` and ``dropout`` size the model, and ``lowercase`` (default True)
lower-cases the text before it is split. Batches: ``(input_ids (N, L) int64, target (N, L)
int64)``, right-padded with ``<pad>`` and ``-100``; logits ``(N, L, V)``. Every option's
meaning: :mod:`.options` (``complement list --task NAME``).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import Task, register_task
from .cards import DataCard
from .datasets import EncodedDataset, PadCollator
from .models import GRULM, CausalTransformerLM
from .readers import read_documents
from .splits import TEST_FRACTION, VAL_FRACTION, split_indices
from .text import TWEETS_LICENCE, TWEETS_SOURCE, drop_repeats, tweet_records, tweets_path

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)
LEVELS = ("word", "char")
MODELS = ("transformer", "gru")
URL = re.compile(r"https?://\S+|www\.\S+")
WORD = re.compile(r"<url>|[\w']+|[^\w\s]")
# tweets_lm: validation NLL ~3.7 (perplexity ~40, 29% top-1) after 6 epochs of 10k tweets
LM_DEFAULTS = {"optimizer": "adamw", "lr": 2e-3, "batch_size": 64, "max_epochs": 5, "weight_decay": 0.01}
TWEETS_LM = DataCard(
    data="the 37,243 distinct tweets of the tweets task, a document each",
    source=TWEETS_SOURCE,
    licence=TWEETS_LICENCE,
    train=8000,
    val=1000,
    test=2000,
    defaults=LM_DEFAULTS,
)
TEXT_FILE_LM = DataCard(
    data="your documents",
    source="your .txt file (a document a line) or a CSV / TSV / JSONL text column (data_path)",
    licence="yours",
    train=None,
    val=VAL_FRACTION,
    test=TEST_FRACTION,
    defaults=LM_DEFAULTS,
)


def split_text(text: str, level: str, lowercase: bool = True) -> list[str]:
    """Words and punctuation marks (URLs as one ``<url>``), or characters."""
    if lowercase:
        text = text.lower()
    if level == "char":
        return list(text)
    return WORD.findall(URL.sub("<url>", text))


def build_vocabulary(documents: Sequence[Sequence[str]], vocab_size: int) -> list[str]:
    """The specials, then the most frequent tokens (ties alphabetical, so the order is reproducible)."""
    counts = Counter(token for doc in documents for token in doc)
    for special in SPECIALS:
        counts.pop(special, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return list(SPECIALS) + [token for token, _ in ranked[: vocab_size - len(SPECIALS)]]


def windows(ids: Sequence[int], max_length: int) -> list[tuple[list[int], list[int]]]:
    """``(input, target)`` pairs of up to ``max_length`` ids from ``<bos> ids <eos>``."""
    sequence = [BOS, *ids, EOS]
    out = []
    for start in range(0, len(sequence) - 1, max_length):
        piece = sequence[start : start + max_length + 1]
        if len(piece) >= 2:
            out.append((piece[:-1], piece[1:]))
    return out


def check_lm_options(level: str, vocab_size: int, model: str) -> None:
    """Fail before reading any data."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    if isinstance(vocab_size, bool) or int(vocab_size) != vocab_size or vocab_size < len(SPECIALS) + 1:
        raise ValueError(
            f"vocab_size must be an integer >= {len(SPECIALS) + 1} (the specials {SPECIALS} and one more); "
            f"got {vocab_size!r}"
        )


def build_lm_task(
    *,
    name: str,
    texts: list[str],
    seed: int,
    level: str,
    vocab_size: int,
    max_length: int | None,
    lowercase: bool,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    model: str,
    d_model: int,
    n_layers: int,
    n_heads: int,
    dropout: float,
    defaults: dict[str, Any],
    info: dict[str, Any],
) -> Task:
    """The shared LM pipeline: split documents, vocabulary from train, windows, datasets, model factory."""
    check_lm_options(level, vocab_size, model)
    max_length = int(max_length or (32 if level == "word" else 128))
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2; got {max_length}")
    split = split_indices(
        len(texts), seed=seed, train_size=train_size, val_size=val_size, test_size=test_size, name=name
    )
    used = torch.cat([split.train, split.val, split.test]).tolist()
    pieces = {i: split_text(texts[i], level, lowercase) for i in used}  # only the documents kept
    vocabulary = build_vocabulary([pieces[i] for i in split.train.tolist()], int(vocab_size))
    index = {token: i for i, token in enumerate(vocabulary)}

    def encoded(which: torch.Tensor) -> EncodedDataset:
        inputs, targets = [], []
        for i in which.tolist():
            for x, y in windows([index.get(token, UNK) for token in pieces[i]], max_length):
                inputs.append(x)
                targets.append(y)
        return EncodedDataset(inputs, targets, as_dict=False)

    train, val, test = encoded(split.train), encoded(split.val), encoded(split.test)
    train_targets = torch.cat(list(train.targets))
    factory: Callable[[], nn.Module]
    if model == "transformer":
        factory = functools.partial(
            CausalTransformerLM, len(vocabulary), max_length, d_model, n_layers, n_heads, dropout, PAD
        )
    else:
        factory = functools.partial(GRULM, len(vocabulary), d_model, n_layers, dropout, PAD)
    return Task(
        name=name,
        kind="lm",
        train=train,
        val=val,
        test=test,
        num_classes=len(vocabulary),
        class_names=vocabulary,
        build_model=factory,
        collate_fn=PadCollator(PAD),
        defaults=defaults,
        info={
            **info,
            "level": level,
            "max_length": max_length,
            "documents": len(texts),
            "train_tokens": len(train_targets),
            "train_unk_rate": float((train_targets == UNK).float().mean()),
            "split": split.as_lists(),
        },
    )


@register_task(
    "tweets_lm", "next-token prediction on the tweets: 2,000-word vocabulary, tiny causal transformer", card=TWEETS_LM
)
def tweets_lm(
    *,
    seed: int = 0,
    level: str = "word",
    vocab_size: int = 2000,
    max_length: int | None = None,
    lowercase: bool = True,
    train_size: int | float | None = TWEETS_LM.train,
    val_size: int | float | None = TWEETS_LM.val,
    test_size: int | float | None = TWEETS_LM.test,
    model: str = "transformer",
    d_model: int = 128,
    n_layers: int = 2,
    n_heads: int = 4,
    dropout: float = 0.1,
) -> Task:
    """``max_length`` (ids per window) defaults to 32 words or 128 characters."""
    check_lm_options(level, vocab_size, model)
    path = tweets_path()
    records = drop_repeats(tweet_records(), "text")
    return build_lm_task(
        name="tweets_lm",
        texts=[r.values["text"] for r in records],
        seed=seed,
        level=level,
        vocab_size=vocab_size,
        max_length=max_length,
        lowercase=lowercase,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        model=model,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        dropout=dropout,
        defaults=TWEETS_LM.task_defaults(),
        info={"source": str(path)},
    )


@register_task(
    "text_file_lm",
    "next-token prediction on your .txt (a document a line) or CSV / JSONL text column",
    card=TEXT_FILE_LM,
)
def text_file_lm(
    *,
    data_path: str | Path,
    seed: int = 0,
    text_column: str = "text",
    encoding: str = "utf-8",
    level: str = "word",
    vocab_size: int = 2000,
    max_length: int | None = None,
    lowercase: bool = True,
    train_size: int | float | None = None,
    val_size: int | float | None = TEXT_FILE_LM.val,
    test_size: int | float | None = TEXT_FILE_LM.test,
    model: str = "transformer",
    d_model: int = 128,
    n_layers: int = 2,
    n_heads: int = 4,
    dropout: float = 0.1,
) -> Task:
    """``max_length`` (ids per window) defaults to 32 words or 128 characters."""
    check_lm_options(level, vocab_size, model)
    records = read_documents(data_path, text_column, encoding)
    return build_lm_task(
        name="text_file_lm",
        texts=[r.values[text_column] for r in records],
        seed=seed,
        level=level,
        vocab_size=vocab_size,
        max_length=max_length,
        lowercase=lowercase,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        model=model,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        dropout=dropout,
        defaults=TEXT_FILE_LM.task_defaults(),
        info={"source": str(data_path)},
    )
