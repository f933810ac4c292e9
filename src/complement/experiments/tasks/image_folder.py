"""Read a folder of images, one sub-folder per class, into a tensor.

``root/<class name>/<any name>.png`` (or .jpg, .jpeg, .bmp, .gif, .webp, .tif): the class
names are the sub-folder names, sorted. Images are decoded with Pillow, converted to
grayscale or RGB, and resized in torch to one fixed size (non-square images are
stretched, not cropped). An image over :data:`MAX_PIXELS` is refused by its header, before it
is decoded: a small PNG can announce a picture that takes gigabytes to decode.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .transforms import resize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
# 50 megapixels, about 0.8 GB at most to decode to float RGB; training images are resized to far fewer anyway
MAX_PIXELS = 50_000_000


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Any]:
    """The open (not yet decoded) Pillow image at ``path``; errors name the file, and what to do."""
    from PIL import Image, UnidentifiedImageError

    allowed = f"the {MAX_PIXELS:,} allowed (MAX_PIXELS of complement.experiments.tasks.image_folder); shrink it"
    try:
        with warnings.catch_warnings():  # Pillow warns from 89 megapixels; the cap below is stricter
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:  # Pillow's own limit (179 megapixels), above the cap
        raise ValueError(f"image {path} has more pixels than {allowed}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}; remove or replace the file") from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ValueError(f"image {path} is {width}x{height} = {width * height:,} pixels, more than {allowed}")
        yield image


def scan_image_folder(
    root: str | Path, class_names: Sequence[str] | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, their class indices and the class names of ``root``.

    With ``class_names`` (a val / test folder), every sub-folder must be one of them.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(
            f"image folder expected, got a file: {root}; pass the folder holding one sub-folder per class"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES][:3]
        hint = f" (it holds images such as {loose} directly: move them into class folders)" if loose else ""
        raise ValueError(
            f"{root} has no class sub-folders{hint}; expected {root}/<class name>/<image>.png, one sub-folder per class"
        )
    names = [p.name for p in folders] if class_names is None else list(class_names)
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        if folder.name not in names:
            raise ValueError(
                f"class folder {folder.name!r} in {root} is not a training class; the training classes are {names}"
            )
        images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(
                f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)}); add images or remove the folder"
            )
        paths += images
        labels += [names.index(folder.name)] * len(images)
    return paths, labels, names


def check_image_size(size: object) -> int | tuple[int, int]:
    """``image_size`` checked: one side (an integer >= 1) or ``[height, width]``; a list becomes a tuple."""
    sides: list[Any] = list(size) if isinstance(size, (list, tuple)) else [size]
    if len(sides) != (2 if isinstance(size, (list, tuple)) else 1) or any(
        isinstance(side, bool) or not isinstance(side, int) or side < 1 for side in sides
    ):
        raise ValueError(
            f"image_size must be an integer >= 1 (square images) or [height, width] of such integers; got {size!r}. "
            "Give e.g. image_size=32"
        )
    return (sides[0], sides[1]) if len(sides) == 2 else sides[0]


def detect_channels(paths: Sequence[Path]) -> int:
    """1 when every image is grayscale, else 3 (reads only the headers)."""
    for path in paths:
        with open_image(path) as image:
            if image.mode not in GRAY_MODES:
                return 3
    return 1


def load_images(paths: Sequence[Path], size: int | tuple[int, int], channels: int) -> Tensor:
    """``(N, channels, H, W)`` float32 images in [0, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale), 3 (RGB) or None (detect); got {channels!r}")
    mode = "L" if channels == 1 else "RGB"
    out = []
    for path in paths:
        with open_image(path) as image:
            try:
                array = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
            except OSError as error:  # a broken or truncated data stream
                raise ValueError(f"cannot read image {path}: {error}; remove or replace the file") from None
        tensor = torch.from_numpy(array.copy())
        tensor = tensor[None] if channels == 1 else tensor.permute(2, 0, 1)
        out.append(resize(tensor, size))
    return torch.stack(out)
