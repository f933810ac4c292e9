"""Values that used to pass validation: non-finite train settings, absurd seed counts, a YAML
list as --config, NaN labels, a one-class validation file, a zero image size, and stale
temporary files that a resumed comparison left behind."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from complement.experiments.cli import main
from complement.experiments.runs.comparison import check_methods_and_seeds
from complement.experiments.runs.config import TrainConfig, check_config_files
from complement.experiments.tasks import build_task

BLOBS = ["--task", "blobs", "--methods", "[ce]", "--seeds", "1", "--train.max_epochs", "1", "--progress", "false"]


def cli_error(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    return capsys.readouterr().err


# 15: non-finite train settings


@pytest.mark.parametrize("name", ["lr", "weight_decay", "complement_weight", "lr_gamma"])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_train_settings_are_refused(name, value):
    with pytest.raises(ValueError, match=rf"train\.{name} must be"):
        TrainConfig(**{name: value}).resolved({})


@pytest.mark.parametrize("name", ["lr", "weight_decay", "complement_weight"])
def test_infinite_train_settings_are_refused_by_name(name):
    with pytest.raises(ValueError, match=rf"train\.{name} must be a finite number; got inf.*--train\.{name} "):
        TrainConfig(**{name: math.inf}).resolved({})  # type: ignore[arg-type]


def test_cli_refuses_inf_on_the_command_line_and_in_yaml(blobs, tmp_path, capsys):
    err = cli_error(["compare", *BLOBS, "--train.lr", ".inf", "--out", str(tmp_path / "a")], capsys)
    assert "train.lr must be a finite number; got inf" in err
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  complement_weight: .inf\n")
    err = cli_error(["compare", "--config", str(config), *BLOBS, "--out", str(tmp_path / "b")], capsys)
    assert "train.complement_weight must be a finite number; got inf" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# 15: seeds


def test_seeds_are_capped():
    with pytest.raises(ValueError, match=r"seeds=1000000000 is more than the 1000 .*--seeds"):
        check_methods_and_seeds(["ce"], 1_000_000_000)
    check_methods_and_seeds(["ce"], 1000)


def test_cli_refuses_a_billion_seeds_before_making_a_directory(blobs, tmp_path, capsys):
    args = ["compare", "--task", "blobs", "--methods", "[ce]", "--seeds", "1000000000", "--out", str(tmp_path / "o")]
    err = cli_error(args, capsys)
    assert "seeds=1000000000 is more than the 1000" in err
    assert not (tmp_path / "o").exists()


# 15: a top-level YAML list as --config (cli.py should call check_config_files; see its docstring)


def test_a_yaml_list_config_is_refused_by_name(tmp_path):
    config = tmp_path / "list.yaml"
    config.write_text("- task: digits\n- seeds: 2\n")
    with pytest.raises(
        ValueError, match=r"--config .*list.yaml: the file's top level is a YAML list; .*'task: digits'"
    ):
        check_config_files(["compare", "--config", str(config)])
    with pytest.raises(ValueError, match=r"top level is a YAML list"):
        check_config_files([f"--config={config}"])
    good = tmp_path / "good.yaml"
    good.write_text("task: digits\n")
    check_config_files(["compare", "--config", str(good), "--config", "/nonexistent.yaml"])


# 15: NaN labels in text_file


def write_rows(path, rows):
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def text_rows(n: int = 6) -> list[str]:
    return [f"text {label} number {i},{label}" for label in ("neg", "pos") for i in range(n)]


@pytest.mark.parametrize("label", ["NaN", "nan"])
def test_nan_labels_are_refused_with_file_and_line(tmp_path, label):
    rows = text_rows()
    rows[3] = f"text with no label,{label}"
    path = write_rows(tmp_path / "data.csv", rows)
    with pytest.raises(ValueError, match=rf"data.csv line 5: the 'label' cell is '{label}', a missing value"):
        build_task("text_file", data_path=path)


def test_json_nan_label_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [json.dumps({"text": f"t {i}", "label": "a" if i % 2 else "b"}) for i in range(10)]
    lines.insert(2, '{"text": "t x", "label": NaN}')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"data.jsonl line 3: the 'label' cell is 'nan', a missing value"):
        build_task("text_file", data_path=str(path))


def test_empty_label_cells_are_refused(tmp_path):
    rows = text_rows()
    rows[0] = "text with no label,"
    path = write_rows(tmp_path / "data.csv", rows)
    with pytest.raises(ValueError, match=r"data.csv line 2: empty 'label'"):
        build_task("text_file", data_path=path)


# 15: a validation file of one class


def one_class_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, UserWarning) and "holds only the class" in str(w)]


def test_text_val_file_of_one_class_warns(tmp_path):
    train = write_rows(tmp_path / "train.csv", text_rows())
    val = write_rows(tmp_path / "val.csv", ["fine,pos", "great,pos"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_task("text_file", data_path=train, val_path=val, test_size=2, max_length=8)
    (message,) = one_class_warnings(record)
    assert "val.csv holds only the class 'pos'" in message and "val_path" in message


def test_text_val_file_of_two_classes_is_quiet(tmp_path):
    train = write_rows(tmp_path / "train.csv", text_rows())
    val = write_rows(tmp_path / "val.csv", ["fine,pos", "bad,neg"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_task("text_file", data_path=train, val_path=val, test_size=2, max_length=8)
    assert one_class_warnings(record) == []


def write_images(root, classes, n):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (6, 6), dtype=np.uint8)).save(root / name / f"{i}.png")
    return str(root)


def test_image_val_folder_of_one_class_warns(tmp_path):
    data = write_images(tmp_path / "data", ["cat", "dog"], 5)
    val = write_images(tmp_path / "val", ["dog"], 2)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_task("image_folder", data_path=data, val_path=val, image_size=8, test_size=2, model="mlp")
    (message,) = one_class_warnings(record)
    assert "val holds only the class 'dog'" in message


# 15: image_size


@pytest.mark.parametrize("size", [0, -3, [8, 0], [8], [8, 8, 8], 2.5, True])
def test_bad_image_size_is_refused_by_name(tmp_path, size):
    data = write_images(tmp_path / "data", ["cat", "dog"], 5)
    with pytest.raises(ValueError, match=r"image_size must be an integer >= 1 .*image_size=32"):
        build_task("image_folder", data_path=data, image_size=size, val_size=2, test_size=2)


def test_image_size_as_a_list_still_works(tmp_path):
    data = write_images(tmp_path / "data", ["cat", "dog"], 5)
    task = build_task("image_folder", data_path=data, image_size=[4, 6], val_size=2, test_size=2, model="mlp")
    assert tuple(task.train[0][0].shape[-2:]) == (4, 6)


# 17: stale temporaries of a killed report are removed on resume


def test_compare_resume_removes_stale_temporaries(blobs, tmp_path, capsys):
    main(["compare", *BLOBS, "--out", str(tmp_path)])
    (directory,) = tmp_path.glob("compare-blobs-*")
    stale = [directory / "figures" / ".reliability.png.abc123.tmp", directory / ".report.md.xyz.tmp"]
    for path in stale:
        path.write_bytes(b"")
    main(["compare", "--resume", str(directory), "--progress", "false"])
    assert not any(path.exists() for path in stale)
    assert (directory / "report.md").exists() and (directory / "figures" / "reliability.png").exists()
