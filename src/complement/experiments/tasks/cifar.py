"""CIFAR-10 from its binary-version files: the COT paper's CIFAR-10 experiment.

``cifar10`` reads the *binary version* of CIFAR-10 (Krizhevsky 2009;
https://www.cs.toronto.edu/~kriz/cifar.html, file ``cifar-10-binary.tar.gz``) from the
folder ``data_dir`` it extracts to, ``cifar-10-batches-bin``:

* ``data_batch_1.bin`` ... ``data_batch_5.bin``: the 50,000 training images;
* ``test_batch.bin``: the 10,000 test images, the test split;
* ``batches.meta.txt`` (optional): the class names, one a line; else the standard ten.

Each record is 3,073 bytes: one label byte (0..9), then the 32x32 image's 1,024 red,
1,024 green and 1,024 blue bytes, each plane row-major. Files are read with numpy and
checked (size a multiple of 3,073 bytes, labels in 0..9). The *python version*
(``cifar-10-python.tar.gz``: ``data_batch_1`` without ``.bin``, ``batches.meta``) is
pickled, and unpickling a file can run any code in it, so it is refused with a pointer
to the binary one.

Splits: the test split is the official test set (all of it unless ``test_size``). The
validation split is ``val_size`` images (default 5,000, stratified, drawn by ``seed``)
held out of the training files; it monitors training and picks a ``keep_best``
checkpoint. The paper's protocol reports the test set after training: the COT authors
(henry8527/COT, ``code/main.py``) train on all 50,000 images and have no validation
set, so the default 45,000 training images are 10% fewer than theirs.

Inputs are normalized with the training split's per-channel mean and std (the authors
use fixed constants; the first convolution and batch norm absorb the difference).
Training images are augmented as in the authors' code: a random crop of the image padded
with 4 black pixels (:class:`~.transforms.RandomCrop`), then a random horizontal flip.

The model is PreAct ResNet-18 (:mod:`.resnet`); ``model="wrn34_10"`` takes WRN-34-10
(:mod:`.wide_resnet`), the adversarial-training papers' network, and ``model="cnn"`` the
small CNN of the other image tasks, for a quick look on a CPU. The defaults are the paper's
recipe: SGD (momentum 0.9) with lr 0.1, weight decay 1e-4, batch 128, 200 epochs, lr
divided by 10 after epochs 100 and 150, COT with two optimizers (``configs/paper_cifar10.yaml``).
Harder variants (``label_noise``, ``imbalance``, ``few_shot``) work as for the other image tasks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .base import Task, register_task
from .cards import DataCard
from .datasets import ImageDataset, stack_batch
from .harder import check_harder
from .models import SmallCNN
from .resnet import preact_resnet18
from .splits import split_classification
from .transforms import Compose, RandomCrop, RandomHorizontalFlip, channel_stats, normalize
from .wide_resnet import wrn34_10

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue planes
# the python version's files: pickled, never read
PICKLED_FILES = ("data_batch_1", "test_batch", "batches.meta")
MODELS = ("preact_resnet18", "wrn34_10", "cnn")
CROP_PAD = 4
DOWNLOAD = (
    "download the binary version, cifar-10-binary.tar.gz, from https://www.cs.toronto.edu/~kriz/cifar.html, "
    "extract it (tar xzf cifar-10-binary.tar.gz) and give its cifar-10-batches-bin folder as data_dir"
)
# The COT authors' recipe (henry8527/COT, code/main.py): two SGD optimizers, momentum 0.9
# (the project's sgd), lr 0.1, weight decay 1e-4 (its --decay default), batch 128, 200
# epochs, lr / 10 at epochs 100 and 150.
PAPER_RECIPE: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": 0.1,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "max_epochs": 200,
    "lr_schedule": "step",
    "lr_milestones": [0.5, 0.75],  # epochs 100 and 150 of 200; they follow max_epochs
    "lr_gamma": 0.1,
    "cot_optimizers": "separate",
}
CIFAR10 = DataCard(
    data="CIFAR-10: 50,000 training and 10,000 test images, 32x32 colour, 10 classes",
    source="your binary-version files (data_dir) from https://www.cs.toronto.edu/~kriz/cifar.html",
    licence="no licence stated (Krizhevsky 2009: cite the tech report)",
    train=45_000,
    val=5_000,
    test=10_000,
    defaults={**PAPER_RECIPE, "adv_eps": 8 / 255},  # adversarial training: Madry et al.'s CIFAR-10 radius
)


def read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary-version file as ``(n, 3, 32, 32)`` uint8 images and ``(n,)`` uint8 labels."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file not found: {path}; {DOWNLOAD}")
    size = path.stat().st_size
    if size == 0 or size % RECORD_BYTES:
        raise ValueError(
            f"{path} has {size:,} bytes, not a whole number of 3,073-byte CIFAR-10 records (1 label byte + "
            f"3,072 pixel bytes); the file is truncated or not CIFAR-10's binary version (CIFAR-100's records "
            f"have 2 label bytes). {DOWNLOAD[0].upper() + DOWNLOAD[1:]}"
        )
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    bad = np.flatnonzero(labels >= len(CLASS_NAMES))
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"{path}: record {first} (byte {first * RECORD_BYTES:,}) has label {int(labels[first])}, and "
            f"{bad.size} record(s) have labels outside 0..9; CIFAR-10 labels are 0..9, so the file is damaged "
            f"or not CIFAR-10's binary version. {DOWNLOAD[0].upper() + DOWNLOAD[1:]}"
        )
    return records[:, 1:].reshape(-1, *IMAGE_SHAPE), labels


def read_class_names(data_dir: Path) -> list[str]:
    """The names in ``batches.meta.txt`` (one a line) when the folder has it, else the standard ten."""
    meta = data_dir / META_FILE
    if not meta.is_file():
        return list(CLASS_NAMES)
    names = [line.strip() for line in meta.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [name for name in names if name]
    if len(names) != len(CLASS_NAMES):
        raise ValueError(
            f"{meta} lists {len(names)} class names, not CIFAR-10's 10 (one a line); restore it from "
            f"cifar-10-binary.tar.gz or delete it to use the standard names {list(CLASS_NAMES)}"
        )
    return names


def check_data_dir(data_dir: str | Path | None) -> Path:
    """The folder of the binary files, refusing a missing one and the pickled python version."""
    if data_dir is None:
        raise ValueError(f"the cifar10 task needs data_dir, the folder of CIFAR-10's binary files: {DOWNLOAD}")
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"CIFAR-10 data_dir not found: {folder}; {DOWNLOAD}")
    if not folder.is_dir():
        raise NotADirectoryError(f"CIFAR-10 data_dir {folder} is a file; give the folder that holds {TRAIN_FILES[0]}")
    pickled = [name for name in PICKLED_FILES if (folder / name).is_file()]
    if pickled or folder.name == "cifar-10-batches-py":
        found = f" ({', '.join(pickled)})" if pickled else ""
        raise ValueError(
            f"{folder} holds the python version of CIFAR-10{found}: its files are pickled, and unpickling can "
            f"run any code a file holds, so complement does not read them. Instead {DOWNLOAD}"
        )
    if not (folder / TRAIN_FILES[0]).exists() and (folder / "cifar-10-batches-bin").is_dir():
        raise FileNotFoundError(
            f"{folder} has no {TRAIN_FILES[0]}, but its sub-folder cifar-10-batches-bin may: "
            f"give data_dir={folder / 'cifar-10-batches-bin'}"
        )
    return folder


def load_cifar10(data_dir: str | Path | None) -> tuple[Tensor, Tensor, Tensor, Tensor, list[str]]:
    """Training images and labels, test images and labels (uint8 ``(n, 3, 32, 32)``, int64), class names."""
    folder = check_data_dir(data_dir)
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks the CIFAR-10 file(s) {missing}; {DOWNLOAD}")
    class_names = read_class_names(folder)
    train = [read_batch_file(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch_file(folder / TEST_FILE)
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    return (
        torch.from_numpy(train_images),
        torch.from_numpy(train_labels).long(),
        torch.from_numpy(test_images),
        torch.from_numpy(test_labels).long(),
        class_names,
    )


def _to_float(images: Tensor) -> Tensor:
    return images.float().div_(255.0)


@register_task(
    "cifar10", "CIFAR-10 from your binary-version files (data_dir), PreAct ResNet-18, the paper's recipe", card=CIFAR10
)
def cifar10(
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    train_size: int | float | None = None,
    val_size: int | float | None = CIFAR10.val,
    test_size: int | float | None = None,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
    augment: bool = True,
    model: str = "preact_resnet18",
    width: int = 32,
) -> Task:
    """``data_dir``: the ``cifar-10-batches-bin`` folder; ``width`` applies to ``model="cnn"`` only."""
    check_harder(label_noise, imbalance, few_shot)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    folder = check_data_dir(data_dir)
    train_images, train_labels, test_images, test_labels, class_names = load_cifar10(folder)
    split = split_classification(
        train_labels,
        class_names,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        few_shot=few_shot,
        imbalance=imbalance,
        label_noise=label_noise,
        name="cifar10",
        test_labels=test_labels,
    )
    train_x = _to_float(train_images[split.train])
    mean, std = channel_stats(train_x)  # training statistics only: val / test must not leak into them
    train_x.sub_(mean[:, None, None]).div_(std[:, None, None])  # normalize() in place: 50,000 images take 600 MB
    steps: list[Callable[[Tensor], Tensor]] = []
    if augment:
        # pad with black as the authors' torchvision crop does on raw pixels: here after normalization
        steps = [RandomCrop(CROP_PAD, fill=-mean / std), RandomHorizontalFlip()]
    num_classes = len(class_names)
    factory: Callable[[], nn.Module]
    if model == "preact_resnet18":
        factory = functools.partial(preact_resnet18, num_classes, IMAGE_SHAPE[0])
    elif model == "wrn34_10":
        factory = functools.partial(wrn34_10, num_classes, IMAGE_SHAPE[0])
    else:
        factory = functools.partial(SmallCNN, IMAGE_SHAPE[0], num_classes, IMAGE_SHAPE[1:], width)
    return Task(
        name="cifar10",
        kind="image",
        train=ImageDataset(
            train_x,
            split.train_targets,
            Compose(steps) if steps else None,
            clean_targets=split.clean_train_targets,
        ),
        val=ImageDataset(normalize(_to_float(train_images[split.val]), mean, std), train_labels[split.val]),
        test=ImageDataset(normalize(_to_float(test_images[split.test]), mean, std), test_labels[split.test]),
        num_classes=num_classes,
        class_names=class_names,
        build_model=factory,
        collate_fn=stack_batch,
        defaults=CIFAR10.task_defaults(),
        info={
            "source": f"CIFAR-10 binary version in {folder}",
            **split.info,
            "image_shape": list(IMAGE_SHAPE),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "augment": repr(Compose(steps)) if steps else None,
        },
    )
