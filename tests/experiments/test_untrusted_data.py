"""Files you did not write stay data: crafted pickles, ``.npz`` caches, IDX files, images and JSON Lines
are refused with an error naming the file and the limit or problem, before they can crash the
interpreter or take gigabytes. The pickles that crashed the old unpickler run in a subprocess."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

from complement._atomic import write_json
from complement.experiments.tasks import build_task, fashion, image_folder, readers
from complement.experiments.tasks.cache import StaleCache, checksum_path, read_npz, write_npz

try:  # numpy >= 2 moved numpy.core to numpy._core
    from numpy._core.multiarray import _reconstruct
except ImportError:
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]


class Reduced:
    """Pickles as whatever ``__reduce__`` value it is given: a hand-made pickle without writing opcodes."""

    def __init__(self, *reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


def array_pickle(state) -> bytes:
    """A pickle of ``_reconstruct(ndarray, (0,), b"b")`` with the array ``state`` numpy would set."""
    return pickle.dumps({"x": Reduced(_reconstruct, (np.ndarray, (0,), b"b"), state)}, protocol=4)


# --- 4. the numpy-only unpickler ----------------------------------------------------------------

# each crashed the interpreter on the old unpickler (which called numpy's ndarray and dtype)
CRASHING_PICKLES = {
    # ndarray((1,), "O", b"A" * 8): an object array over 8 arbitrary bytes, a pointer it dereferences
    "object_buffer": (
        pickle.dumps(Reduced(np.ndarray, ((1,), "O", b"A" * 8)), protocol=4),
        "numpy.ndarray is called",
    ),
    # a structured dtype whose object field the pickle's flags hide: the bytes are freed as pointers
    "hidden_object_field": (
        array_pickle(
            (
                1,
                (1,),
                Reduced(np.dtype, ("V8", False, True), (3, "|", None, ("a",), {"a": (np.dtype("O"), 0)}, 8, 1, 1)),
                False,
                b"A" * 8,
            )
        ),
        r"dtype .*V8.* is not one of the plain dtypes \['<f8', '\|u1'\]",
    ),
}

LOAD_EACH = """
import sys
from pathlib import Path
from complement.experiments.tasks import readers
for path in sys.argv[1:]:
    try:
        readers.load_numpy_pickle(Path(path).read_bytes())  # named "pickle" in errors
        print("loaded", flush=True)
    except Exception as error:
        print(f"{'ValueError' if isinstance(error, ValueError) else type(error).__name__}: {error}", flush=True)
"""


def test_crashing_pickles_give_a_clean_error(tmp_path):
    paths = []
    for name, (payload, _) in CRASHING_PICKLES.items():
        paths.append(tmp_path / f"{name}.pkl")
        paths[-1].write_bytes(payload)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_EACH, *map(str, paths)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"the unpickler crashed (exit {result.returncode}): {result.stderr[-2000:]}"
    lines = result.stdout.splitlines()
    assert len(lines) == len(CRASHING_PICKLES)
    for line, (_, message) in zip(lines, CRASHING_PICKLES.values()):
        assert line.startswith("ValueError: pickle: "), line
        assert re.search(message, line), line


F8 = Reduced(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0))


@pytest.mark.parametrize(
    ("payload", "options", "message"),
    [
        (pickle.dumps(np.asfortranarray(np.ones((2, 3)))), {}, r"shape \(2, 3\) is not in C order"),
        (pickle.dumps(np.ones(3, ">f8")), {}, r"is not one of the plain dtypes \['<f8', '\|u1'\]"),
        (pickle.dumps(np.arange(3, dtype=np.int64)), {}, "is not one of the plain dtypes"),
        (pickle.dumps(np.zeros(10)), {"max_elements": 5}, r"shape \(10,\) has 10 elements, more than the 5 cap"),
        (array_pickle((1, (4,), F8, False, b"x" * 8)), {}, r"needs 32 bytes; got 8 bytes"),
        (array_pickle((1, (-1,), F8, False, b"")), {}, r"shape \(-1,\) is not a tuple"),
        (pickle.dumps([F8]), {}, "numpy.dtype where an array or plain data was expected"),
        (pickle.dumps(Reduced(_reconstruct, (np.ndarray, (5,), b"b"))), {}, "not as numpy pickles an array"),
        (pickle.dumps(np.ones(3))[:-20], {}, "pickle data was truncated"),
        (b"\x80\x04K\x01)R.", {}, r"not a pickle of numpy arrays \(TypeError: 'int' object is not callable\)"),
    ],
    ids=[
        "fortran",
        "big_endian",
        "int64",
        "cap",
        "short_bytes",
        "negative_shape",
        "bare_dtype",
        "odd_call",
        "truncated",
        "call_a_number",
    ],
)
def test_the_unpickler_makes_only_plain_arrays(payload, options, message):
    with pytest.raises(ValueError, match=f"member.pkl: .*{message}"):
        readers.load_numpy_pickle(payload, where="member.pkl", **options)


def test_the_unpickler_makes_the_arrays_numpy_would():
    arrays = {"a": np.arange(12.0).reshape(3, 4) / 1000, "b": [np.arange(5, dtype=np.uint8)], "c": np.zeros((0, 2))}
    loaded = readers.load_numpy_pickle(pickle.dumps(arrays, protocol=4))
    for got, want in ((loaded["a"], arrays["a"]), (loaded["b"][0], arrays["b"][0]), (loaded["c"], arrays["c"])):
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


def test_the_unpickler_resolves_shared_and_cyclic_lists_once():
    shared: list = [np.ones(2)]
    for _ in range(60):  # 2**60 paths from the top in a pickle of a few hundred bytes
        shared = [shared, shared]
    cyclic: list = [np.zeros(1)]
    cyclic.append(cyclic)
    loaded = readers.load_numpy_pickle(pickle.dumps({"shared": shared, "cyclic": cyclic}, protocol=4))
    assert loaded["shared"][0] is loaded["shared"][1] and loaded["cyclic"][1] is loaded["cyclic"]


@pytest.mark.skipif(not fashion.sdist_path().exists(), reason="the Fashion-MNIST sdist is not in the data cache")
def test_the_real_fashion_mnist_pickle_loads_as_numpy_loads_it():
    path = fashion.verify_sdist()
    member = gzip.decompress(readers.read_tar_member(path, fashion.MEMBER, fashion.MEMBER_SHA256))
    loaded = readers.load_numpy_pickle(member, max_elements=fashion.TRAIN_COUNT * fashion.PIXELS)
    reference = pickle.loads(member)  # trusted here only because the pinned SHA-256 matched
    assert sorted(loaded) == sorted(reference) == ["train_X", "train_Y", "train_Y(num)"]
    for key, want in reference.items():
        got = loaded[key]
        assert got.dtype == want.dtype == np.dtype("<f8") and got.shape == want.shape and got.flags.c_contiguous
        assert np.array_equal(got, want), key


# --- 5. the .npz cache ----------------------------------------------------------------------------

SMALL = 20  # images in the small fake Fashion-MNIST the cache tests use


def fake_arrays():
    images = np.random.default_rng(0).integers(0, 256, (SMALL, 28, 28), dtype=np.uint8)
    return images, np.arange(SMALL, dtype=np.int64) % 10


@pytest.fixture
def small_fashion(monkeypatch, tmp_path):
    """A data cache in tmp_path, 20 training images, and a fake sdist read that counts its calls."""
    monkeypatch.setenv("COMPLEMENT_DATA", str(tmp_path))
    monkeypatch.setattr(fashion, "TRAIN_COUNT", SMALL)
    builds = []

    def from_sdist(path):
        builds.append(path)
        return fake_arrays()

    monkeypatch.setattr(fashion, "arrays_from_sdist", from_sdist)
    fashion.sdist_arrays.cache_clear()
    yield builds
    fashion.sdist_arrays.cache_clear()


def vouch(path):
    """Write the checksum file the cache writer would: the cache then reaches the content checks."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    write_json(checksum_path(path), {"source_sha256": fashion.MEMBER_SHA256, "npz_sha256": digest})


def test_the_cache_is_written_with_its_checksum_file_and_reused(small_fashion):
    images, labels = fashion.sdist_arrays()
    assert len(small_fashion) == 1 and labels.tolist() == fake_arrays()[1].tolist()
    assert checksum_path(fashion.npz_path()).is_file()
    fashion.sdist_arrays.cache_clear()
    again, _ = fashion.sdist_arrays()
    assert len(small_fashion) == 1 and np.array_equal(again.numpy(), images.numpy())


def test_a_cache_without_a_matching_checksum_is_rebuilt(small_fashion, capsys):
    images, _ = fake_arrays()
    np.savez(fashion.npz_path(), images=images, labels=np.array(["7"] * SMALL))  # not written by the cache
    _, labels = fashion.sdist_arrays()
    assert len(small_fashion) == 1 and labels.tolist() == fake_arrays()[1].tolist()
    assert "no checksum file" in capsys.readouterr().err
    # changed after it was written: the checksum file no longer matches it
    np.savez(fashion.npz_path(), images=images, labels=np.full(SMALL, 7))
    fashion.sdist_arrays.cache_clear()
    fashion.sdist_arrays()
    assert len(small_fashion) == 2 and "changed after it was written" in capsys.readouterr().err
    # another source's hash
    write_json(checksum_path(fashion.npz_path()), {"source_sha256": "0" * 64, "npz_sha256": "0" * 64})
    with pytest.raises(StaleCache, match=f"does not name the source SHA-256 {fashion.MEMBER_SHA256}"):
        read_npz(fashion.npz_path(), source_sha256=fashion.MEMBER_SHA256)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array(["7"] * SMALL), r"labels should be integers of shape \(20,\); got <U1"),  # was read as class 7
        (np.full(SMALL, -100), r"labels range -100..-100, outside the classes 0..9"),  # was a bincount error
        (np.full(SMALL, 7.0), "labels should be integers"),
    ],
)
def test_a_vouched_cache_with_bad_labels_is_refused_by_name(small_fashion, labels, message):
    write_npz(fashion.npz_path(), source_sha256=fashion.MEMBER_SHA256, images=fake_arrays()[0], labels=labels)
    with pytest.raises(ValueError, match=rf"fashion_mnist-{fashion.MEMBER_SHA256[:12]}\.npz: {message}.*delete it"):
        fashion.sdist_arrays()
    assert not small_fashion  # refused, not silently rebuilt


def zip_bomb(path, megabytes: int = 256):
    """An .npz of one uint8 array of ``megabytes`` zeros, deflated to about 0.3% of that."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("images.npy", "w", force_zip64=True) as member,
    ):
        header = {"descr": "|u1", "fortran_order": False, "shape": (megabytes << 20,)}
        np.lib.format.write_array_header_1_0(member, header)
        chunk = bytes(1 << 20)
        for _ in range(megabytes):
            member.write(chunk)
    return path


def test_a_zip_bomb_is_refused_without_decompressing(small_fashion, monkeypatch):
    bomb = zip_bomb(fashion.npz_path())
    assert bomb.stat().st_size < 2 << 20
    vouch(bomb)

    def no_unpacking(*args, **kwargs):
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    cap = SMALL * (fashion.PIXELS + 8) + 1024
    with pytest.raises(
        ValueError,
        match=rf"{bomb.name}: its arrays would unpack to 268,435,5\d\d bytes, more than the {cap:,} expected",
    ):
        fashion.sdist_arrays()
    # without a cap of the caller's (the embedding cache): the file's own size, as write_npz stores arrays
    with pytest.raises(
        ValueError, match=rf"{bomb.name}: its arrays would unpack to .* more than the {bomb.stat().st_size:,}"
    ):
        read_npz(bomb)


def test_an_npy_header_that_announces_more_than_its_member_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive, archive.open("a.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        member.write(bytes(64))
    with pytest.raises(ValueError, match=r"liar.npz: a.npy announces a float64 array of shape \(1000000000000,\)"):
        read_npz(path)
    path.write_bytes(b"PK not a zip")
    with pytest.raises(ValueError, match="liar.npz: not a readable .npz file"):
        read_npz(path)


def test_the_embedding_cache_calls_still_work(tmp_path):
    path = tmp_path / "part.npz"
    write_npz(path, embeddings=np.ones((3, 2), np.float32), key=np.array("abc"))
    stored = read_npz(path)
    assert str(stored["key"]) == "abc" and stored["embeddings"].shape == (3, 2)
    assert not checksum_path(path).exists()  # no source to record


# --- 6. IDX files, images, JSON Lines -------------------------------------------------------------


def write_zero_idx(path, dims, code=0x08):
    """A gzipped IDX file of zeros, compressed as it is written (nothing that size is held in memory)."""
    size = int(np.prod(dims)) * np.dtype(readers.IDX_TYPES[code]).itemsize
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims))
        for start in range(0, size, 1 << 20):
            file.write(bytes(min(1 << 20, size - start)))
    return path


def test_idx_files_larger_than_the_data_set_are_refused_unread(tmp_path):
    images = write_zero_idx(tmp_path / "train-images-idx3-ubyte.gz", (300_000, 28, 28))  # 235 MB in 1 MB
    write_zero_idx(tmp_path / "train-labels-idx1-ubyte.gz", (300_000,))
    assert images.stat().st_size < 2 << 20
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte.gz: its header announces 300,000 items .* more than the 60,000 expected",
    ):
        readers.read_idx(images, max_count=60_000)
    fashion.idx_arrays.cache_clear()
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: .*300,000 items.*60,000 expected"):
        build_task("fashion_mnist", data_dir=tmp_path)
    fashion.idx_arrays.cache_clear()
    small = write_zero_idx(tmp_path / "small.gz", (2, 3, 3))
    with pytest.raises(ValueError, match=r"small.gz: IDX dimensions \(2, 3, 3\); expected \(N, 28, 28\)"):
        readers.read_idx(small, item_shape=(28, 28))


def write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(readers.IDX_TYPES[code]).tobytes()))


@pytest.mark.parametrize(
    ("labels", "code", "message"),
    [
        (np.full(10, -1), 0x09, "label -1 is outside the classes 0..9"),  # was a raw torch error
        (np.full(10, np.nan), 0x0D, r"expected integer labels \(IDX type 0x08\); got float32"),
    ],
)
def test_idx_labels_are_checked(tmp_path, labels, code, message):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8), 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, code)
    fashion.idx_arrays.cache_clear()
    with pytest.raises(ValueError, match=f"train-labels-idx1-ubyte.gz: {message}"):
        fashion.idx_arrays(str(tmp_path))
    fashion.idx_arrays.cache_clear()


def write_png(path, width, height, rows: bytes | None = None):
    """A 1-bit grey PNG of ``width`` x ``height``; its data is ``rows`` deflated (all zero by default)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows is None:
        rows = (b"\0" + bytes((width + 7) // 8)) * height  # a filter byte, then the row
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    png = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)
    return path


def test_images_over_the_pixel_cap_are_refused_before_decoding(tmp_path, monkeypatch):
    from PIL import ImageFile

    def no_decoding(self):
        raise AssertionError(f"{self.size} decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    big = write_png(tmp_path / "big.png", 12_000, 12_000)  # 144 megapixels in 17 KB: 1.47 GB RSS to read
    huge = write_png(tmp_path / "huge.png", 20_000, 20_000, rows=b"")  # Pillow's own DecompressionBombError
    assert big.stat().st_size < 20_000
    for path, pixels in ((big, "12000x12000 = 144,000,000 pixels, more than"), (huge, "more pixels than")):
        for read in (lambda p: image_folder.load_images([p], 8, 1), lambda p: image_folder.detect_channels([p])):
            with pytest.raises(
                ValueError, match=rf"image .*{path.name} (is|has) {pixels} the 50,000,000 allowed \(MAX_PIXELS"
            ):
                read(path)


def test_the_pixel_cap_applies_to_an_image_folder_task(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_PIXELS", 20 * 20)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(4):
            write_png(tmp_path / name / f"{i}.png", 20, 20)
    build_task("image_folder", data_path=str(tmp_path), image_size=8, val_size=2, test_size=2)
    write_png(tmp_path / "dog" / "wide.png", 21, 20)
    with pytest.raises(ValueError, match=r"image .*wide.png is 21x20 = 420 pixels, more than the 400 allowed"):
        build_task("image_folder", data_path=str(tmp_path), image_size=8, val_size=2, test_size=2)


def test_deeply_nested_jsonl_names_the_file_and_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": 2}\n')
    with pytest.raises(ValueError, match="deep.jsonl line 2: JSON nested too deeply to read"):
        readers.read_records(path, ["text", "label"])
