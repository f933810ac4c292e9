"""The cifar10 task on a tiny synthetic copy of CIFAR-10's binary version, PreAct ResNet-18, the paper recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from complement.experiments.runs.config import TrainConfig
from complement.experiments.tasks import build_task, task_options
from complement.experiments.tasks.cifar import CLASS_NAMES
from complement.experiments.tasks.models import SmallCNN
from complement.experiments.tasks.resnet import PreActResNet, preact_resnet18
from complement.experiments.tasks.transforms import RandomCrop, RandomHorizontalFlip, RandomShift
from complement.experiments.tasks.wide_resnet import WideResNet, wrn34_10

ROOT = Path(__file__).resolve().parents[2]
PAPER_CONFIG = ROOT / "configs" / "paper_cifar10.yaml"
ADVERSARIAL_CONFIG = ROOT / "configs" / "cifar10_adversarial.yaml"
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILE = "test_batch.bin"
PER_FILE = 64


def write_cifar(folder: Path, per_file: int = PER_FILE, seed: int = 0) -> dict[str, np.ndarray]:
    """CIFAR-10's binary layout: per record 1 label byte, then 1,024 red, green and blue bytes.

    The test images are brighter than the training ones, so statistics that took them in would show.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [*TRAIN_FILES, TEST_FILE]:
        records = rng.integers(0, 256, (per_file, 3073), dtype=np.uint8)
        records[:, 0] = rng.permutation(np.arange(per_file) % 10)
        if name == TEST_FILE:
            records[:, 1:] = records[:, 1:] // 4 + 192
        records.tofile(folder / name)
        written[name] = records
    return written


@pytest.fixture
def cifar_dir(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path / "cifar-10-batches-bin"
    return folder, write_cifar(folder)


def _raw_images(records: np.ndarray) -> np.ndarray:
    """Images ``(n, 3, 32, 32)`` in [0, 1] from records, pixel by pixel from the byte offsets."""
    n = len(records)
    images = np.empty((n, 3, 32, 32), dtype=np.float64)
    for channel in range(3):
        for row in range(32):
            start = 1 + channel * 1024 + row * 32
            images[:, channel, row, :] = records[:, start : start + 32]
    return images / 255.0


def _unnormalize(inputs: torch.Tensor, task) -> np.ndarray:
    mean, std = torch.tensor(task.info["mean"]), torch.tensor(task.info["std"])
    return (inputs * std[:, None, None] + mean[:, None, None]).double().numpy()


# --- the task ----------------------------------------------------------------------------


def test_task_splits_labels_and_pixel_layout(cifar_dir):
    folder, written = cifar_dir
    task = build_task("cifar10", data_dir=str(folder), seed=3, val_size=20)
    assert task.kind == "image" and task.num_classes == 10 and task.class_names == list(CLASS_NAMES)
    assert (len(task.train), len(task.val), len(task.test)) == (5 * PER_FILE - 20, 20, PER_FILE)
    train_records = np.concatenate([written[name] for name in TRAIN_FILES])
    split = task.info["split"]
    # the test split is the official test file, all of it; train and val partition the training files
    assert sorted(split["test"]) == list(range(PER_FILE))
    assert sorted(split["train"] + split["val"]) == list(range(5 * PER_FILE))
    assert task.test.targets.tolist() == written[TEST_FILE][split["test"], 0].tolist()
    assert task.val.targets.tolist() == train_records[split["val"], 0].tolist()
    assert task.train.targets.tolist() == train_records[split["train"], 0].tolist()
    assert torch.bincount(task.val.targets, minlength=10).tolist() == [2] * 10  # stratified
    # pixels: channel planes, each row-major, in [0, 1] before normalization
    np.testing.assert_allclose(_unnormalize(task.test.inputs, task), _raw_images(written[TEST_FILE][split["test"]]),
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(_unnormalize(task.val.inputs, task), _raw_images(train_records[split["val"]]), atol=1e-5)
    # the same seed gives the same split; another seed another validation set
    assert build_task("cifar10", data_dir=folder, seed=3, val_size=20).info["split"] == split
    assert build_task("cifar10", data_dir=folder, seed=4, val_size=20).info["split"]["val"] != split["val"]
    x, y = task.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_normalization_statistics_come_from_the_training_split_only(cifar_dir):
    folder, written = cifar_dir
    task = build_task("cifar10", data_dir=folder, val_size=20, augment=False)
    train_records = np.concatenate([written[name] for name in TRAIN_FILES])
    train_images = _raw_images(train_records[task.info["split"]["train"]])
    np.testing.assert_allclose(task.info["mean"], train_images.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(task.info["std"], train_images.std(axis=(0, 2, 3), ddof=1), rtol=1e-4)
    everything = np.concatenate([_raw_images(train_records), _raw_images(written[TEST_FILE])])
    assert abs(task.info["mean"][0] - everything.mean(axis=(0, 2, 3))[0]) > 0.02  # the bright test set is left out
    inputs = task.train.inputs
    torch.testing.assert_close(inputs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(inputs.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)


def test_harder_variants_and_sizes_apply_to_the_training_split(cifar_dir):
    folder, _ = cifar_dir
    noisy = build_task("cifar10", data_dir=folder, val_size=20, label_noise=0.25)
    flipped = int((noisy.train.targets != noisy.train.clean_targets).sum())
    assert flipped == noisy.info["flipped_labels"] and 0.15 * len(noisy.train) < flipped < 0.35 * len(noisy.train)
    few = build_task("cifar10", data_dir=folder, val_size=20, few_shot=3, test_size=30)
    assert torch.bincount(few.train.targets).tolist() == [3] * 10 and len(few.test) == 30
    assert len(build_task("cifar10", data_dir=folder, val_size=0.25, train_size=50).train) == 50


def test_class_names_come_from_batches_meta_txt(cifar_dir):
    folder, _ = cifar_dir
    names = [f"class{i}" for i in range(10)]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n\n")  # the real file ends in blank lines
    assert build_task("cifar10", data_dir=folder, val_size=20).class_names == names
    (folder / "batches.meta.txt").write_text("\n".join(names[:9]))
    with pytest.raises(ValueError, match=r"batches.meta.txt lists 9 class names, not CIFAR-10's 10"):
        build_task("cifar10", data_dir=folder, val_size=20)


def test_defaults_are_the_paper_recipe_of_the_config(cifar_dir):
    folder, _ = cifar_dir
    task = build_task("cifar10", data_dir=folder, val_size=20)
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    assert config["task"] == "cifar10" and config["methods"] == ["ce", "cot"] and config["seeds"] >= 1
    # the task adds the adversarial-training radius (8/255), which COT's recipe does not use
    assert task.defaults.pop("adv_eps") == 8 / 255 and task.defaults == config["train"]
    # `complement fit --task cifar10` (no train settings) resolves to the config's recipe
    recipe = TrainConfig().resolved(task.defaults)
    assert recipe == TrainConfig(**config["train"]).resolved({})
    assert (recipe.optimizer, recipe.lr, recipe.batch_size, recipe.max_epochs) == ("sgd", 0.1, 128, 200)
    assert (recipe.lr_schedule, recipe.lr_milestones, recipe.lr_gamma) == ("step", (0.5, 0.75), 0.1)
    assert recipe.milestone_epochs(recipe.max_epochs) == [100, 150]  # the paper's epochs
    assert recipe.cot_optimizers == "separate" and recipe.weight_decay == 1e-4
    assert task_options("cifar10")["val_size"] == 5000 and task_options("cifar10")["model"] == "preact_resnet18"


# --- refusing bad data -------------------------------------------------------------------


def _append_byte(folder: Path) -> None:
    with open(folder / "data_batch_3.bin", "ab") as file:
        file.write(b"\x00")


def _label_11(folder: Path) -> None:
    records = np.fromfile(folder / TEST_FILE, dtype=np.uint8).reshape(-1, 3073)
    records[5, 0] = 11
    records.tofile(folder / TEST_FILE)


def _python_version(folder: Path) -> None:
    for name in [*TRAIN_FILES, TEST_FILE]:
        (folder / name).unlink()
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"\x80\x04never unpickled")


BAD_DATA = [
    ("one byte too many", _append_byte, ValueError,
     r"data_batch_3.bin has 196,673 bytes, not a whole number of 3,073-byte CIFAR-10 records.*cifar-10-binary.tar.gz"),
    ("empty file", lambda f: (f / "data_batch_2.bin").write_bytes(b""), ValueError,
     r"data_batch_2.bin has 0 bytes"),
    ("label 11", _label_11, ValueError,
     r"test_batch.bin: record 5 \(byte 15,365\) has label 11.*labels are 0..9.*cifar-10-binary.tar.gz"),
    ("missing file", lambda f: (f / "data_batch_4.bin").unlink(), FileNotFoundError,
     r"lacks the CIFAR-10 file\(s\) \['data_batch_4.bin'\].*download the binary version, cifar-10-binary.tar.gz"),
    ("python version", _python_version, ValueError,
     r"python version of CIFAR-10 \(data_batch_1, test_batch, batches.meta\): its files are pickled.*"
     r"cifar-10-binary.tar.gz"),
]  # fmt: skip


@pytest.mark.parametrize("case,damage,error,message", BAD_DATA, ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_refused_naming_the_file_and_the_fix(cifar_dir, case, damage, error, message):
    folder, _ = cifar_dir
    damage(folder)
    with pytest.raises(error, match=message):
        build_task("cifar10", data_dir=folder, val_size=20)


def test_bad_data_dir_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="needs data_dir.*cifar-10-binary.tar.gz"):
        build_task("cifar10")
    with pytest.raises(FileNotFoundError, match="data_dir not found: .*nowhere; download the binary version"):
        build_task("cifar10", data_dir=tmp_path / "nowhere")
    write_cifar(tmp_path / "cifar-10-batches-bin", per_file=10)
    with pytest.raises(FileNotFoundError, match="sub-folder cifar-10-batches-bin may: give data_dir="):
        build_task("cifar10", data_dir=tmp_path)
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(ValueError, match="python version of CIFAR-10: its files are pickled"):
        build_task("cifar10", data_dir=tmp_path / "cifar-10-batches-py")
    with pytest.raises(ValueError, match="model must be one of"):
        build_task("cifar10", data_dir=tmp_path / "cifar-10-batches-bin", val_size=10, model="vgg")


# --- augmentation ------------------------------------------------------------------------


def test_random_crop_matches_a_zero_padded_crop_and_is_seeded():
    image = torch.rand(3, 32, 32) + 1.0  # no zeros, so padding shows
    crop = RandomCrop(4)
    for seed in range(20):
        torch.manual_seed(seed)
        out = crop(image)
        torch.manual_seed(seed)
        dy, dx = torch.randint(0, 9, (2,)).tolist()  # torchvision's RandomCrop(32, padding=4): 9 x 9 offsets
        expected = F.pad(image, (4, 4, 4, 4))[..., dy : dy + 32, dx : dx + 32]
        assert out.shape == image.shape
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.manual_seed(0)
    first = [crop(image) for _ in range(5)]
    torch.manual_seed(0)
    again = [crop(image) for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({tuple(out.flatten()[:300].tolist()) for out in first}) > 1  # random across draws
    offsets = set()
    for _ in range(2000):
        out = crop(image)
        offsets.add((int((out[0, :, 16] == 0).sum()), int((out[0, 16, :] == 0).sum())))
    assert offsets == {(rows, cols) for rows in range(5) for cols in range(5)}  # every shift, 0 to 4 pixels


def test_random_crop_fills_per_channel_and_random_shift_still_replicates():
    image = torch.rand(3, 8, 8)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    crop = RandomCrop(2, fill=fill)
    for _ in range(50):
        out = crop(image)
        padded = ~torch.isin(out, image)
        for channel in range(3):
            assert torch.all(out[channel][padded[channel]] == fill[channel])
    assert RandomCrop(0)(image) is image
    assert repr(crop) == "RandomCrop(pad=2, fill=[-1, -2, -3])" and repr(RandomCrop(4)) == "RandomCrop(pad=4, fill=0)"
    with pytest.raises(ValueError, match="pad must be >= 0"):
        RandomCrop(-1)
    # the existing transform keeps its behaviour: the border is replicated, never a constant
    shifted = [RandomShift(2)(image) for _ in range(50)]
    assert all(torch.isin(out, image).all() for out in shifted)


def test_task_augments_training_images_only_with_black_padding(cifar_dir):
    folder, _ = cifar_dir
    task = build_task("cifar10", data_dir=folder, val_size=20)
    crop, flip = task.train.transform.transforms
    assert isinstance(crop, RandomCrop) and crop.pad == 4 and isinstance(flip, RandomHorizontalFlip) and flip.p == 0.5
    assert task.val.transform is None and task.test.transform is None
    mean, std = torch.tensor(task.info["mean"]), torch.tensor(task.info["std"])
    torch.testing.assert_close(crop.fill * std + mean, torch.zeros(3), atol=1e-6, rtol=0)  # black, as torchvision's
    torch.manual_seed(0)
    first = [task.train[i][0] for i in range(8)]
    torch.manual_seed(0)
    again = [task.train[i][0] for i in range(8)]
    assert all(a.shape == (3, 32, 32) and torch.equal(a, b) for a, b in zip(first, again))
    assert any(not torch.equal(a, task.train.inputs[i]) for i, a in enumerate(first))
    assert build_task("cifar10", data_dir=folder, val_size=20, augment=False).train.transform is None


# --- the model ---------------------------------------------------------------------------


def test_preact_resnet18_gives_class_last_logits_and_has_11_17m_parameters(cifar_dir):
    model = preact_resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_171_146  # as the COT authors' PreActResNet18
    assert sum(p.numel() for p in preact_resnet18(final_activation=True).parameters()) == 11_171_146 + 2 * 512
    shortcuts = [block.shortcut is not None for stage in model.stages for block in stage]
    assert shortcuts == [False, False, True, False, True, False, True, False]  # where the shape changes
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
        assert PreActResNet(num_classes=100, in_channels=1)(torch.randn(2, 1, 32, 32)).shape == (2, 100)
    folder, _ = cifar_dir
    task = build_task("cifar10", data_dir=folder, val_size=20)
    torch.manual_seed(0)
    built = task.build_model()
    assert isinstance(built, PreActResNet)
    inputs, target = task.collate_fn([task.train[i] for i in range(4)])
    logits = built(inputs)
    assert logits.shape == (4, 10) and target.shape == (4,)
    F.cross_entropy(logits, target).backward()
    assert all(p.grad is not None for p in built.parameters())
    cnn = build_task("cifar10", data_dir=folder, val_size=20, model="cnn").build_model()
    assert isinstance(cnn, SmallCNN) and cnn(inputs).shape == (4, 10)


def test_wrn34_10_is_the_adversarial_training_papers_network(cifar_dir):
    model = wrn34_10()
    assert sum(p.numel() for p in model.parameters()) == 46_160_474  # WRN-34-10's count in the TRADES/Madry code
    assert [len(group) for group in model.groups] == [5, 5, 5]  # (34 - 4) / 6 units a group
    assert [group[0].conv1.out_channels for group in model.groups] == [160, 320, 640]
    assert [group[0].conv1.stride for group in model.groups] == [(1, 1), (2, 2), (2, 2)]
    shortcuts = [block.shortcut is not None for group in model.groups for block in group]
    assert shortcuts == [True, False, False, False, False] * 3  # 16 -> 160 changes the width too
    small = WideResNet(depth=10, widen=1, num_classes=4, in_channels=1)
    assert small(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"depth is 6n \+ 4"):
        WideResNet(depth=33)
    folder, _ = cifar_dir
    built = build_task("cifar10", data_dir=folder, val_size=20, model="wrn34_10").build_model()
    assert isinstance(built, WideResNet) and sum(p.numel() for p in built.parameters()) == 46_160_474
    built.eval()
    with torch.no_grad():
        assert built(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# --- the recipe end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_paper_config_runs_end_to_end_through_the_cli(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    out = tmp_path / "runs"
    # the real config, cut to one epoch of 2 COT steps: 16 training images in batches of 8 (a PreAct ResNet-18
    # step at batch 128 takes ~8 s on a 2-core CPU), 10 validation and 10 test images
    args = [
        sys.executable, "-m", "complement.experiments.cli", "compare", "--config", str(PAPER_CONFIG),
        "--task_options", f"{{data_dir: {folder}, val_size: 10, train_size: 16, test_size: 10}}",
        "--methods", "[cot]", "--seeds", "1", "--train.max_epochs", "1", "--train.batch_size", "8",
        "--out", str(out), "--progress", "false",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (compare_dir,) = out.iterdir()
    run = compare_dir / "cot-seed0"
    spec = json.loads((run / "config.json").read_text())
    train = spec["train"]
    assert (train["optimizer"], train["lr"], train["weight_decay"], train["cot_optimizers"]) == ("sgd", 0.1, 1e-4,
                                                                                               "separate")  # fmt: skip
    assert (train["lr_schedule"], train["lr_milestones"], train["batch_size"]) == ("step", [0.5, 0.75], 8)
    assert spec["task_options"]["data_dir"] == str(folder)
    history = json.loads((run / "history.json").read_text())
    assert [row["passes"] for row in history] == [4]  # 2 batches x (CE pass + complement pass)
    predictions = torch.load(run / "predictions.pt")
    assert predictions["probs"].shape == (10, 10) and predictions["target"].shape == (10,)
    assert (compare_dir / "report.md").exists()


@pytest.mark.slow
def test_adversarial_config_trains_each_method_one_step_through_the_cli(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    out = tmp_path / "runs"
    # the real config, cut to one step of 10 images (one a class) a method, PGD-2 and a quick evaluation of 10
    # test images (the config's autoattack is ART's, tested on its own; a PGD-10 step costs about 11 times a
    # PreAct ResNet-18 CE step, ~8 s at batch 128 on a 2-core CPU)
    args = [
        sys.executable, "-m", "complement.experiments.cli", "compare", "--config", str(ADVERSARIAL_CONFIG),
        "--task_options", f"{{data_dir: {folder}, val_size: 10, train_size: 10, test_size: 10}}",
        "--methods", "[pgd_at, trades, cot_pgd]", "--train.max_epochs", "1", "--train.batch_size", "10",
        "--train.adv_steps", "2", "--robust.attacks", "[fgsm, pgd]", "--robust.steps", "2",
        "--out", str(out), "--progress", "false",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (compare_dir,) = out.iterdir()
    config = yaml.safe_load(ADVERSARIAL_CONFIG.read_text())
    assert config["methods"] == ["ce", "pgd_at", "trades", "cot_pgd"]
    for method, passes in (("pgd_at", 1 + 2), ("trades", 1 + 2 + 1), ("cot_pgd", 2 + 2)):
        run = compare_dir / f"{method}-seed0"
        spec = json.loads((run / "config.json").read_text())
        train = spec["train"]
        assert (train["adv_eps"], train["adv_step_size"], train["trades_beta"]) == (8 / 255, 2 / 255, 6.0)
        recipe = (train["optimizer"], train["lr"], train["weight_decay"], train["lr_milestones"])
        assert recipe == ("sgd", 0.1, 5e-4, [0.5, 0.75])
        assert spec["robust"]["eps"] == [8 / 255] and spec["robust"]["examples"] == 1000
        assert [row["passes"] for row in json.loads((run / "history.json").read_text())] == [passes]  # one step
        record = json.loads((run / "record.json").read_text())
        assert {r["attack"] for r in record["robust"]["results"]} >= {"clean", "fgsm", "pgd", "worst"}
    assert "Robust accuracy" in (compare_dir / "report.md").read_text()
