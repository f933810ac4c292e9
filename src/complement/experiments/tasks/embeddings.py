"""The on-disk cache of frozen-encoder sentence embeddings.

:func:`cached_embeddings` turns texts into ``(N, D)`` vectors with a frozen encoder, once:
:class:`MeanPoolEncoder` runs a pretrained HF encoder (the packaged MiniLM-L6 by default)
under ``torch.inference_mode`` in batches, longest texts first, and averages the last
hidden state over the attention mask (the pooling of MiniLM's sentence-transformers config,
without its final L2 normalization: the heads standardize their inputs anyway). Progress
goes to stderr, since a large corpus takes minutes. The encoder is loaded from local files
only unless ``allow_download=True`` (:mod:`.pretrained`).

Cache files are ``<cache_dir>/embeddings/<part>-<key>.npz`` (:mod:`.cache`). The key is a
SHA-256 of the model path, the name, size and modification time of every file of the model
folder, ``max_length``, the pooling and every text, so a changed model, length or text gets
a new file and a stale one is never read. The frozen-encoder text tasks are built in
:mod:`complement.experiments.tasks.reviews`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .cache import cache_dir, read_npz, write_npz
from .pretrained import from_pretrained, load_tokenizer

CACHE_FORMAT = 1  # bump when the pooling or the file layout changes: old files then stop matching
EMBED_BATCH = 32  # texts per encoder call: sorted by length they pad little; 16, 32 and 64 ran as fast here

Encoder = Callable[[Sequence[str]], Tensor]


def model_identity(model_path: str) -> list[Any]:
    """What identifies a model's files: name, size and mtime of each file of a local folder, else the hub name."""
    folder = Path(model_path)
    if not folder.is_dir():
        return [model_path]
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found.append([path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns])
    return found


def cache_key(texts: Sequence[str], model_path: str, max_length: int) -> str:
    """SHA-256 over the model's identity, ``max_length``, the pooling and every text (length-prefixed)."""
    folder = Path(model_path)
    header = {
        "format": CACHE_FORMAT,
        "pooling": "mean over attention mask, last hidden state",
        "model_path": str(folder.resolve()) if folder.is_dir() else model_path,
        "model_files": model_identity(model_path),
        "max_length": int(max_length),
        "texts": len(texts),
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))  # the prefix keeps ["ab", "c"] apart from ["a", "bc"]
        digest.update(data)
    return digest.hexdigest()


class MeanPoolEncoder:
    """A frozen HF encoder: texts -> ``(N, D)`` float32 means of the last hidden state over the attention mask."""

    def __init__(self, model_path: str, max_length: int, batch_size: int = EMBED_BATCH, allow_download: bool = False):
        self.model_path, self.max_length, self.batch_size = model_path, int(max_length), int(batch_size)
        self.allow_download = allow_download

    def __call__(self, texts: Sequence[str]) -> Tensor:
        from transformers import AutoModel

        tokenizer = load_tokenizer(self.model_path, self.allow_download)
        model = from_pretrained(AutoModel, self.model_path, self.allow_download).eval()
        # longest first, so each batch pads little and the progress estimate errs on the long side
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = torch.empty(len(texts), model.config.hidden_size)
        start = last = time.monotonic()
        with torch.inference_mode():
            for first in range(0, len(order), self.batch_size):
                index = order[first : first + self.batch_size]
                batch = tokenizer(
                    [texts[i] for i in index],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out[index] = ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float()
                done, now = first + len(index), time.monotonic()
                if now - last > 10 or done == len(order):
                    last = now
                    left = (now - start) / done * (len(order) - done)
                    print(
                        f"  embedded {done:,}/{len(order):,} texts, {now - start:.0f} s, about {left:.0f} s left",
                        file=sys.stderr,
                        flush=True,
                    )
        return out


def cached_embeddings(
    texts: Sequence[str],
    *,
    model_path: str,
    max_length: int,
    part: str,
    encoder: Encoder | None = None,
    directory: str | Path | None = None,
    allow_download: bool = False,
) -> tuple[Tensor, Path]:
    """``(N, D)`` embeddings of ``texts`` and their cache file: read when present, else computed once and written.

    ``encoder`` defaults to :class:`MeanPoolEncoder` (``allow_download`` lets it fetch a hub
    model); ``directory`` to :func:`cache_dir`.
    """
    if not texts:
        raise ValueError(f"{part}: no texts to embed")
    key = cache_key(texts, model_path, max_length)
    path = Path(directory if directory is not None else cache_dir()) / "embeddings" / f"{part}-{key[:20]}.npz"
    if path.exists():
        stored = read_npz(path)
        vectors, stored_key = stored["embeddings"], str(stored["key"])
        if stored_key != key or vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(
                f"embedding cache {path} does not match its texts (key {stored_key[:20]}, shape {vectors.shape}); "
                "delete it and build the task again to recompute it"
            )
        return torch.from_numpy(vectors), path
    print(
        f"{part}: embedding {len(texts):,} texts once with {model_path} (max_length {max_length}); "
        f"cached in {path.parent}",
        file=sys.stderr,
        flush=True,
    )
    encode = encoder if encoder is not None else MeanPoolEncoder(model_path, max_length, allow_download=allow_download)
    vectors = encode(texts).detach().float().cpu().contiguous().numpy()
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(f"the encoder returned shape {vectors.shape} for {len(texts)} texts; expected (N, D)")
    write_npz(path, embeddings=vectors, key=np.array(key))
    return torch.from_numpy(vectors), path
