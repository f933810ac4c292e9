"""Readers of data files, with errors that name the file, the place and the fix.

Text files (decoded whole up front, so a bad byte is reported with its line too):

* :func:`read_records` reads CSV / TSV (header row) or JSON Lines (one object a line)
  and returns the wanted columns of every row with its line number;
* :func:`read_documents` reads one document a line (``.txt``) or a text column;
* :func:`read_conll` reads CoNLL-style token files: ``token<TAB>tag`` (or space-separated
  columns, the tag last) one token a line, a blank line between sentences.

Binary files:

* :func:`read_idx` reads an IDX file (gzipped or not), checking the magic number, the
  type, the dimensions and the exact data length;
* :func:`read_tar_member` reads one member of a tarball in memory (nothing is extracted)
  once the tarball's and the member's SHA-256 match pinned values;
* :func:`load_numpy_pickle` unpickles with :class:`NumpyOnlyUnpickler`, which resolves only
  the globals that rebuild numpy arrays and refuses any other before it can run.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import pickle
import struct
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".txt",)
# IDX type byte -> numpy dtype (big-endian, as the format stores numbers)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 1 << 31  # a corrupt header must not make us read or allocate without bound


def existing_path(path: str | Path, what: str) -> Path:
    """``path`` as a Path; FileNotFoundError naming it (and what it should be) when absent."""
    if path is None:
        raise ValueError(f"data_path is required: the {what}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_text(path: Path, encoding: str) -> str:
    """The whole file decoded; a bad byte is reported with its line number and the fix."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path.name} line {line}: not valid {encoding} text ({error.reason}); "
            "pass encoding=... (e.g. encoding='latin-1')"
        ) from None


@dataclass
class Record:
    """The wanted fields of one row and the line it starts on."""

    values: dict[str, Any]
    line: int


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_records(
    path: str | Path,
    columns: Sequence[str],
    encoding: str = "utf-8",
    delimiter: str | None = None,
    optional: Sequence[str] = (),
) -> list[Record]:
    """Rows of a CSV / TSV / JSONL file with the ``columns`` wanted; every wanted field must be non-empty.

    ``optional`` columns are read when present and may be empty (missing ones read as "")."""
    path = existing_path(path, "data file")
    if path.is_dir():
        raise IsADirectoryError(f"data file expected, got a folder: {path}")
    suffix = path.suffix.lower()
    text = read_text(path, encoding)
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, text, columns, optional)
    if delimiter is None:
        if suffix not in CSV_SUFFIXES:
            raise ValueError(
                f"{path.name}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl "
                "(or pass delimiter=... for another delimited text file)"
            )
        delimiter = CSV_SUFFIXES[suffix]
    return _read_csv(path, text, columns, delimiter, optional)


def _read_csv(path: Path, text: str, columns: Sequence[str], delimiter: str, optional: Sequence[str]) -> list[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{path.name}: empty file; expected a header row naming the columns {list(columns)}") from None
    header = [name.strip().lstrip("\ufeff") for name in header]  # a BOM from spreadsheet exports
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(
            f"{path.name}: no column(s) {missing}; the header row has {header}. "
            "Name the right ones with text_column=... / label_column=..."
        )
    where = {c: header.index(c) for c in columns}
    extra = {c: header.index(c) for c in optional if c in header}
    records: list[Record] = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ValueError(f"{path.name} line {reader.line_num}: {error}") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            line = reader.line_num + 1
            continue  # blank line
        if len(row) != len(header):
            raise ValueError(
                f"{path.name} line {line}: expected {len(header)} fields ({delimiter.join(header)}), "
                f"got {len(row)}: {_short(row)}. Quote fields that contain the delimiter or a newline."
            )
        values = {c: row[i] for c, i in where.items()}
        _check_values(path, line, values)
        values.update({c: row[extra[c]] if c in extra else "" for c in optional})
        records.append(Record(values, line))
        line = reader.line_num + 1  # a quoted field may span lines: the next row starts after them
    return records


def _read_jsonl(path: Path, text: str, columns: Sequence[str], optional: Sequence[str]) -> list[Record]:
    records: list[Record] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path.name} line {number}: not valid JSON ({error.msg}): {_short(raw)}; "
                "expected JSON Lines, one object a line"
            ) from None
        if not isinstance(obj, dict):
            raise ValueError(
                f"{path.name} line {number}: expected a JSON object like "
                f'{{"{columns[0]}": ...}}, got {type(obj).__name__}'
            )
        missing = [c for c in columns if c not in obj]
        if missing:
            raise ValueError(
                f"{path.name} line {number}: no key(s) {missing}; the keys are {sorted(obj)}. "
                "Name the right ones with text_column=... / label_column=..."
            )
        values = {c: obj[c] for c in columns}
        for key, value in values.items():
            if isinstance(value, (dict, list)) or value is None:
                raise ValueError(
                    f"{path.name} line {number}: {key!r} must be a string or a number, got {_short(value)}"
                )
        values = {k: str(v) for k, v in values.items()}
        _check_values(path, number, values)
        values.update({c: "" if obj.get(c) is None else str(obj[c]) for c in optional})
        records.append(Record(values, number))
    if not records:
        raise ValueError(f"{path.name}: no rows; expected one JSON object a line with keys {list(columns)}")
    return records


def _check_values(path: Path, line: int, values: dict[str, str]) -> None:
    for key, value in values.items():
        if not value.strip():
            raise ValueError(f"{path.name} line {line}: empty {key!r}; every row needs a value there")


def read_documents(path: str | Path, text_column: str = "text", encoding: str = "utf-8") -> list[Record]:
    """Texts for language modelling: a ``.txt`` file (one document a line) or a CSV / TSV / JSONL column."""
    path = existing_path(path, "text file")
    if path.suffix.lower() in TEXT_SUFFIXES:
        lines = read_text(path, encoding).splitlines()
        records = [Record({text_column: t}, n) for n, t in enumerate(lines, start=1) if t.strip()]
        if not records:
            raise ValueError(f"{path.name}: no text; expected one document a line")
        return records
    return read_records(path, [text_column], encoding)


@dataclass
class Sentence:
    """The tokens and tags of one sentence, and the line of each token."""

    tokens: list[str]
    tags: list[str]
    lines: list[int]


def read_conll(path: str | Path, encoding: str = "utf-8") -> list[Sentence]:
    """Sentences of a CoNLL-style file: ``token<TAB>tag`` or ``token ... tag`` lines, blank lines between."""
    path = existing_path(path, "CoNLL file")
    if path.is_dir():
        raise IsADirectoryError(f"CoNLL file expected, got a folder: {path}")
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    for number, raw in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not raw.strip():  # blank, or only the tab of an empty token<TAB>tag pair
            if tokens:
                sentences.append(Sentence(tokens, tags, lines))
                tokens, tags, lines = [], [], []
            continue
        if raw.startswith("-DOCSTART-"):
            continue
        fields = raw.split("\t") if "\t" in raw else raw.split()
        fields = [f.strip() for f in fields]
        if len(fields) < 2 or not fields[0] or not fields[-1]:
            raise ValueError(
                f"{path.name} line {number}: expected 'token<TAB>tag' (or 'token tag'), got {_short(raw)}; "
                "separate sentences with a blank line"
            )
        tokens.append(fields[0])
        tags.append(fields[-1])
        lines.append(number)
    if tokens:
        sentences.append(Sentence(tokens, tags, lines))
    if not sentences:
        raise ValueError(f"{path.name}: no sentences; expected 'token<TAB>tag' lines, a blank line between sentences")
    return sentences


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a native-endian numpy array; malformed files are refused by name."""
    path = Path(path)
    with open(path, "rb") as raw:
        zipped = raw.read(2) == b"\x1f\x8b"
    opener: Any = gzip.open if zipped else open
    try:
        with opener(path, "rb") as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES or magic[3] == 0:
                raise ValueError(
                    f"{path.name}: not an IDX file (magic number {magic.hex() or 'missing'}; expected two zero bytes, "
                    f"a type byte in {sorted(hex(t) for t in IDX_TYPES)} and a rank >= 1)"
                )
            dtype, rank = np.dtype(IDX_TYPES[magic[2]]), magic[3]
            header = file.read(4 * rank)
            if len(header) < 4 * rank:
                raise ValueError(f"{path.name}: truncated IDX header: {rank} dimensions announced, fewer stored")
            dims = struct.unpack(f">{rank}I", header)
            size = math.prod(dims) * dtype.itemsize
            if size > MAX_IDX_BYTES:
                raise ValueError(f"{path.name}: IDX dimensions {dims} would need {size:,} bytes; the header is corrupt")
            data = file.read(size + 1)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path.name}: unreadable ({error}); expected an IDX file, gzipped or not") from None
    if len(data) != size:
        problem = "is truncated" if len(data) < size else "has bytes after the data"
        raise ValueError(f"{path.name}: {problem}: its header {dims} announces {size:,} bytes of data")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


def read_tar_member(path: Path, member: str, member_sha256: str) -> bytes:
    """The bytes of ``member`` of the tarball ``path``, read in memory; refused unless its SHA-256 matches."""
    with tarfile.open(path, "r:gz") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise ValueError(f"{path}: no member {member}") from None
        if not info.isfile():
            raise ValueError(f"{path}: {member} is not a regular file")
        handle = tar.extractfile(info)
        assert handle is not None  # a regular file always has one
        packed = handle.read()
    actual = sha256(packed)
    if actual != member_sha256:
        raise ValueError(f"{path}: {member} has SHA-256 {actual}, not the pinned {member_sha256}; it is not read")
    return packed


def _numpy_reconstruct() -> Any:
    try:  # numpy >= 2 moved numpy.core to numpy._core; the old name still resolves, with a warning
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays in containers and nothing else.

    A pickle can name any importable callable (``os.system``) and have it called while it
    loads; :meth:`find_class` is where every such name is resolved, so it allows only the
    three that rebuild an ndarray. Arrays of Python objects are refused after loading.
    """

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load the global {module}.{name}: this pickle may only rebuild numpy arrays "
                f"(allowed: {sorted(f'{m}.{n}' for m, n in self.ALLOWED)}). The file is not the expected data"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return np.ndarray if name == "ndarray" else np.dtype


def load_numpy_pickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler` (it is never executed beyond rebuilding arrays)."""
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()
