"""Task options are discoverable before a run: every option of every task has a meaning,
``describe_task`` shows defaults (presets applied) and meanings, ``docs/data.md``'s option
tables match them, and the training settings a run would use are known without building."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from complement.experiments.runs.config import TrainConfig
from complement.experiments.tasks import available_tasks, build_task, task_card, task_options
from complement.experiments.tasks.base import _REGISTRY, KINDS, TaskSpec
from complement.experiments.tasks.options import (
    OPTION_HELP,
    TASK_OPTION_HELP,
    describe_task,
    format_value,
    option_help,
    options_table,
    resolved_train_defaults,
    task_kind,
    train_defaults,
)
from tests.experiments.test_task_splits import write_images, write_lines

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"
USER_DATA = ("text_file", "image_folder", "conll_file", "text_file_lm")
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="digits needs scikit-learn")
needs_pil = pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="image_folder needs Pillow")


def _option_rows(text: str) -> dict[str, list[str]]:
    """``describe_task``'s option rows: name -> [default, meaning]."""
    rows = text.split("options (--task_options):\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return {row.split()[0]: row.split(None, 2)[1:] for row in rows}


@pytest.mark.parametrize("name", list(available_tasks()))
def test_every_option_of_every_task_has_a_one_line_meaning(name):
    meanings = option_help(name)
    undocumented = sorted(set(task_options(name)) - set(meanings))
    assert not undocumented, f"task {name!r}: give {undocumented} a meaning in tasks/options.py OPTION_HELP"
    for option, meaning in meanings.items():
        assert meaning.strip() and "\n" not in meaning, (name, option)
        assert len(meaning) <= 110, (name, option, len(meaning))


def test_no_meaning_is_left_without_its_option():
    every = {option for name in available_tasks() for option in task_options(name)}
    assert sorted(set(OPTION_HELP) - every) == []
    for name, overrides in TASK_OPTION_HELP.items():
        assert name in available_tasks(), name
        assert set(overrides) <= set(task_options(name)), (name, sorted(set(overrides) - set(task_options(name))))


def test_describe_text_file_shows_the_required_option_and_the_defaults():
    text = describe_task("text_file")
    assert text.startswith(f"text_file: {available_tasks()['text_file']}\n")
    assert "kind: text\n" in text
    assert "licence: yours\n" in text
    assert "split: train rest / val 10% / test 20%\n" in text
    assert "train defaults: optimizer=adamw, lr=0.0001, batch_size=32, max_epochs=2, weight_decay=0.01\n" in text
    rows = _option_rows(text)
    assert list(rows) == list(task_options("text_file"))
    assert rows["data_path"][0] == "required"
    assert rows["data_path"][1] == option_help("text_file")["data_path"]
    expected = {
        "seed": "0",
        "val_path": "null",
        "text_column": "text",
        "label_column": "label",
        "encoding": "utf-8",
        "max_length": "128",
        "allow_download": "false",
        "label_noise": "0.0",
        "few_shot": "null",
    }
    assert {key: rows[key][0] for key in expected} == expected
    assert "10% of data_path" in rows["val_size"][1]
    assert "complement fit --task text_file --task_options '{data_path: my.csv, label_column: sentiment}'" in text
    assert (
        "complement fit --task text_file --task_options.data_path my.csv --task_options.label_column sentiment" in text
    )


def test_describe_a_preset_applies_it():
    text = describe_task("mnist_noisy")
    assert "preset: mnist with label_noise=0.4\n" in text
    assert _option_rows(text)["label_noise"][0] == "0.4"
    assert _option_rows(describe_task("mnist"))["label_noise"][0] == "0.0"
    fewshot = describe_task("mnist_fewshot")
    assert _option_rows(fewshot)["few_shot"][0] == "20"
    assert "max_epochs=40" in fewshot and "split: train 200 / val 500 / test 1,000" in fewshot
    frozen = describe_task("movie_reviews_frozen")
    rows = _option_rows(frozen)
    assert (rows["encoder"][0], rows["max_length"][0], rows["train_size"][0]) == ("frozen", "256", "null")
    assert "kind: image\n" in frozen and "kind: text\n" in describe_task("movie_reviews")
    # a preset shares its task's overrides: the frozen head's width
    assert rows["width"][1] == TASK_OPTION_HELP["movie_reviews"]["width"]


def test_describe_an_alias_names_its_task():
    text = describe_task("mnist5k")
    assert text.startswith("mnist: ") and "(mnist5k is another name for mnist)" in text


@pytest.mark.parametrize("call", [describe_task, option_help, options_table, train_defaults, task_kind])
def test_an_unknown_task_names_the_registered_ones(call):
    with pytest.raises(ValueError, match=r"unknown task 'nope'; choose from \[.*'text_file'"):
        call("nope")
    with pytest.raises(ValueError, match=r"unknown task 'nope'"):
        resolved_train_defaults("nope", TrainConfig())


def test_format_value_writes_yaml():
    assert [format_value(v) for v in (None, True, False, 0.1, 32, "cnn", [32, 32], ("a", None))] == [
        "null",
        "true",
        "false",
        "0.1",
        "32",
        "cnn",
        "[32, 32]",
        "[a, null]",
    ]
    assert format_value(inspect.Parameter.empty) == "required"
    assert format_value("") == "''"


def test_every_task_has_a_kind_and_the_encoder_decides_the_corpus_tasks():
    for name in available_tasks():
        assert task_kind(name) in KINDS, name
    assert task_kind("movie_reviews", {"encoder": "frozen"}) == "image"
    assert task_kind("bbc_news_frozen", {"encoder": "finetune"}) == "text"


@pytest.mark.parametrize("name", USER_DATA)
def test_docs_show_each_user_data_tasks_options(name):
    text = DOCS.read_text(encoding="utf-8")
    assert "## Your own data" in text
    assert options_table(name) in text, f"docs/data.md's {name} table is stale: paste options_table({name!r}) over it"


def test_train_defaults_come_from_the_card_and_the_options():
    for name in available_tasks():
        card = task_card(name)
        assert card is not None
        if name != "image_folder":  # its max_epochs depends on the size of your data
            assert train_defaults(name) == dict(card.defaults), name
    assert "max_epochs" not in train_defaults("image_folder")
    # options that a preset states take the preset's card; others leave max_epochs to the data
    assert train_defaults("mnist", {"few_shot": 20})["max_epochs"] == 40
    assert train_defaults("mnist_fewshot", {"few_shot": None})["max_epochs"] == 8
    assert "max_epochs" not in train_defaults("digits", {"few_shot": 5})
    assert train_defaults("digits", {"label_noise": 0.4}) == train_defaults("digits")
    frozen = train_defaults("movie_reviews", {"encoder": "frozen"})
    assert frozen == {k: v for k, v in train_defaults("movie_reviews_frozen").items() if k != "max_epochs"}
    # text tasks keep their card's epochs whatever the split
    assert train_defaults("text_file", {"train_size": 10}) == train_defaults("text_file")


@needs_sklearn
@pytest.mark.parametrize("options", [{}, {"few_shot": 5}, {"label_noise": 0.2, "val_size": 200}])
def test_train_defaults_are_the_built_tasks(options):
    built = build_task("digits", **options).defaults
    known = train_defaults("digits", options)
    assert known == {key: built[key] for key in known}
    assert set(built) - set(known) <= {"max_epochs"}
    assert task_kind("digits", options) == build_task("digits", **options).kind


@needs_pil
def test_image_folder_leaves_max_epochs_to_the_data(tmp_path):
    folder = write_images(tmp_path / "images", 5)
    task = build_task("image_folder", data_path=str(folder))
    known = train_defaults("image_folder", {"data_path": str(folder)})
    # the training set's size decides max_epochs, the images' channels the adversarial radius
    assert known == {key: value for key, value in task.defaults.items() if key not in ("max_epochs", "adv_eps")}
    resolved = resolved_train_defaults("image_folder", TrainConfig(), {"data_path": str(folder)})
    assert resolved["max_epochs"] is None  # the built task decides (a small folder trains longer)
    assert resolved["lr"] == task.defaults["lr"]
    assert resolved_train_defaults("image_folder", TrainConfig(max_epochs=3))["max_epochs"] == 3
    assert task_kind("image_folder") == task.kind


def test_text_lm_defaults_and_kind_are_the_built_tasks(tmp_path):
    path = write_lines(tmp_path / "d.txt", 15)
    options = {"data_path": str(path), "train_size": 5, "level": "char"}
    task = build_task("text_file_lm", **options)
    assert train_defaults("text_file_lm", options) == task.defaults
    assert task_kind("text_file_lm", options) == task.kind == "lm"


@needs_sklearn
def test_resolved_train_defaults_are_what_a_run_resolves():
    built = build_task("digits")
    for train in (TrainConfig(), TrainConfig(lr=0.5, max_epochs=2), TrainConfig(lr_schedule="cosine")):
        assert resolved_train_defaults("digits", train) == train.resolved(built.defaults).to_dict()


def test_resolved_train_defaults_take_the_cards_extra_settings():
    resolved = resolved_train_defaults("cifar10", TrainConfig())
    assert (resolved["optimizer"], resolved["lr_schedule"], resolved["lr_milestones"]) == ("sgd", "step", [0.5, 0.75])
    assert resolved["max_epochs"] == 200 and resolved["cot_optimizers"] == "separate"
    with pytest.raises(ValueError, match="lr_milestones"):
        resolved_train_defaults("digits", TrainConfig(lr_schedule="step"))


def _cardless(*, seed: int = 0, size: int = 3):  # registered, never built
    raise AssertionError("describing a task must not build it")


def test_a_task_without_a_card_leaves_its_defaults_to_the_build(monkeypatch):
    monkeypatch.setitem(_REGISTRY, "cardless", TaskSpec("cardless", _cardless, "a task of someone else's"))
    assert train_defaults("cardless") == {}
    resolved = resolved_train_defaults("cardless", TrainConfig(batch_size=8))
    assert resolved["batch_size"] == 8 and resolved["lr"] is None and resolved["max_epochs"] is None
    assert resolved["complement_weight"] == 1.0  # not a task default: the fallback
    text = describe_task("cardless")
    assert "kind:" not in text and "train defaults" not in text  # neither is known before it is built
    assert _option_rows(text)["size"] == ["3", "-"]  # an option without a meaning shows "-"
    assert task_kind("cardless") is None
