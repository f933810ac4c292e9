"""Readers of data files, with errors that name the file, the place and the fix.

Text files (decoded whole up front, so a bad byte is reported with its line too):

* :func:`read_records` reads CSV / TSV (header row) or JSON Lines (one object a line)
  and returns the wanted columns of every row with its line number;
* :func:`read_documents` reads one document a line (``.txt``) or a text column;
* :func:`read_conll` reads CoNLL-style token files: ``token<TAB>tag`` (or space-separated
  columns, the tag last) one token a line, a blank line between sentences.

Binary files:

* :func:`read_idx` reads an IDX file (gzipped or not), checking the magic number, the
  type, the dimensions (against a caller's cap on the item count, before any data is read)
  and the exact data length;
* :func:`read_tar_member` reads one member of a tarball in memory (nothing is extracted)
  once the tarball's and the member's SHA-256 match pinned values;
* :func:`load_numpy_pickle` unpickles with :class:`NumpyOnlyUnpickler`, which calls no
  global at all: it records the numpy calls a plain array's pickle makes, and plain arrays
  of the expected dtypes are then made from the recorded bytes by :func:`numpy.frombuffer`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import pickle
import reprlib
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
IDX_CHUNK = 1 << 20  # IDX data is read (and decompressed) this many bytes at a time, into one buffer
# the dtypes load_numpy_pickle rebuilds, as numpy pickles them: (dtype name, byte order); Fashion-MNIST's are <f8
PICKLE_DTYPES: dict[tuple[str, str], np.dtype] = {("f8", "<"): np.dtype("<f8"), ("u1", "|"): np.dtype("|u1")}
MAX_PICKLE_ELEMENTS = 1 << 26  # the default cap on one unpickled array's elements


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
        except RecursionError:  # json's parser recurses once per nesting level
            raise ValueError(
                f"{path.name} line {number}: JSON nested too deeply to read; expected one flat object a line"
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


def read_idx(
    path: str | Path, *, max_count: int | None = None, item_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """An IDX file (gzipped or not) as a native-endian numpy array; malformed files are refused by name.

    ``max_count`` caps the first dimension (the number of images or labels) and ``item_shape``
    fixes the others: the header is checked before any data is read, and the data is then read
    a chunk at a time, so a small gzip that announces a huge array is refused unread."""
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
            if max_count is not None and dims[0] > max_count:
                raise ValueError(
                    f"{path.name}: its header announces {dims[0]:,} items (dimensions {dims}), more than the "
                    f"{max_count:,} expected (max_count); it is not the expected file"
                )
            if item_shape is not None and dims[1:] != tuple(item_shape):
                expected = "(N" + "".join(f", {n}" for n in item_shape) + ")"
                raise ValueError(f"{path.name}: IDX dimensions {dims}; expected {expected}")
            size = math.prod(dims) * dtype.itemsize
            if size > MAX_IDX_BYTES:
                raise ValueError(f"{path.name}: IDX dimensions {dims} would need {size:,} bytes; the header is corrupt")
            data = bytearray(size)  # filled in place: no second copy of the data while reading
            view, done = memoryview(data), 0
            while done < size and (count := file.readinto(view[done : done + IDX_CHUNK])):
                done += count
            extra = file.read(1)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path.name}: unreadable ({error}); expected an IDX file, gzipped or not") from None
    if done != size or extra:
        problem = "is truncated" if done < size else "has bytes after the data"
        raise ValueError(f"{path.name}: {problem}: its header {dims} announces {size:,} bytes of data")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


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


class RefusedPickle(pickle.UnpicklingError, ValueError):
    """A pickle :func:`load_numpy_pickle` does not load: an UnpicklingError, and a ValueError as every bad file."""


class _Global:
    """What :class:`NumpyOnlyUnpickler` hands the pickle for an allowed global: calling it only records the call."""

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]  # neither a dict key nor a set member: only where _resolve looks

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> _Call:
        if self.name == "ndarray":  # numpy's pickles only pass it to _reconstruct; called, it trusts any buffer
            raise pickle.UnpicklingError("numpy.ndarray is called; a numpy pickle only passes it to _reconstruct")
        return _Call(self.name, args)

    def __repr__(self) -> str:
        return f"numpy.{self.name}"


class _Call:
    """A recorded call of ``_reconstruct`` or ``dtype``, and the state the pickle then gave it (BUILD)."""

    __slots__ = ("args", "name", "state")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name, self.args, self.state = name, args, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:  # not its arguments: calls can nest and share them without end
        return f"numpy.{self.name}(...)"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and tuples of plain numpy arrays, calling no global on the way.

    A pickle can name any importable callable (``os.system``) and have it called while it
    loads; :meth:`find_class` is where every such name is resolved. It allows only the
    three names in a numpy array's pickle and returns stand-ins for them that record the
    calls: numpy's own ``ndarray`` and ``dtype`` would trust the pickle's buffer and flags
    (an object array over arbitrary bytes crashes the interpreter). :func:`load_numpy_pickle`
    then makes the arrays itself. The pickle can still make builtin containers, strings and
    numbers as large as itself: it should be data you have pinned, not any file.
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
        return _Global(name)


def load_numpy_pickle(data: bytes, *, where: str = "pickle", max_elements: int = MAX_PICKLE_ELEMENTS) -> Any:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler` and make its arrays; ``where`` names it in errors.

    Arrays must be C-ordered, of a dtype in :data:`PICKLE_DTYPES` and of at most ``max_elements``
    elements; they are read-only views of the pickle's bytes (copy one to write to it)."""
    try:
        loaded = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as error:  # a refused global, or bytes that are no pickle
        raise RefusedPickle(f"{where}: {error}") from None
    except Exception as error:  # any other failure of the bytes (a call on a number, ...) is the file's fault too
        raise RefusedPickle(f"{where}: not a pickle of numpy arrays ({type(error).__name__}: {error})") from None
    try:
        return _resolve(loaded, where, max_elements, {})
    except RecursionError:  # containers nested thousands deep
        raise ValueError(f"{where}: containers nested too deeply; expected a dict of numpy arrays") from None


def _resolve(obj: Any, where: str, max_elements: int, done: dict[int, Any]) -> Any:
    """``obj`` with every recorded ``_reconstruct`` call replaced by the array it describes.

    ``done`` maps ids to results: a pickle can share one list at every level of a small file
    (2**60 paths to walk) or put a list in itself, so each container is resolved once."""
    if id(obj) in done:
        return done[id(obj)]
    if isinstance(obj, dict):
        mapping = done[id(obj)] = {}
        mapping.update((key, _resolve(value, where, max_elements, done)) for key, value in obj.items())
        return mapping
    if isinstance(obj, list):
        items = done[id(obj)] = []
        items.extend(_resolve(value, where, max_elements, done) for value in obj)
        return items
    if isinstance(obj, tuple):  # a cycle through a tuple passes a list or dict, already in done
        done[id(obj)] = tuple(_resolve(value, where, max_elements, done) for value in obj)
        return done[id(obj)]
    if isinstance(obj, _Call) and obj.name == "_reconstruct":
        done[id(obj)] = _array(obj, where, max_elements)
        return done[id(obj)]
    if isinstance(obj, (_Global, _Call)):
        raise ValueError(f"{where}: numpy.{obj.name} where an array or plain data was expected")
    return obj


def _array(call: _Call, where: str, max_elements: int) -> np.ndarray:
    """The array a numpy pickle's ``_reconstruct(ndarray, (0,), b"b")`` and its state describe, checked."""
    args, state = call.args, call.state
    if not (len(args) == 3 and isinstance(args[0], _Global) and args[0].name == "ndarray" and args[1:] == ((0,), b"b")):
        raise ValueError(f"{where}: _reconstruct called with {reprlib.repr(args)}, not as numpy pickles an array")
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
        raise ValueError(f"{where}: array state {reprlib.repr(state)} is not numpy's (1, shape, dtype, fortran, bytes)")
    _, shape, dtype_call, fortran, raw = state
    dtype = _dtype(dtype_call, where)
    if not (isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"{where}: array shape {reprlib.repr(shape)} is not a tuple of at most 32 sizes")
    count = math.prod(shape)
    if count > max_elements:
        raise ValueError(
            f"{where}: an array of shape {shape} has {count:,} elements, more than the {max_elements:,} cap"
        )
    if fortran is not False:  # numpy writes False for C order; another order is not the expected file
        raise ValueError(f"{where}: array of shape {shape} is not in C order (fortran={reprlib.repr(fortran)})")
    if not isinstance(raw, bytes) or len(raw) != count * dtype.itemsize:
        got = f"{len(raw):,} bytes" if isinstance(raw, bytes) else type(raw).__name__
        raise ValueError(f"{where}: a {dtype} array of shape {shape} needs {count * dtype.itemsize:,} bytes; got {got}")
    return np.frombuffer(raw, dtype).reshape(shape)


def _dtype(call: Any, where: str) -> np.dtype:
    """The dtype a recorded ``dtype(name, align, copy)`` call and its state describe, if it is a plain allowed one."""
    # numpy pickles a plain dtype as dtype(name, align, copy) with the state
    # (3, byte order, subarray, names, fields, elsize, alignment, flags) = (3, order, None, None, None, -1, -1, 0)
    if isinstance(call, _Call) and call.name == "dtype" and len(call.args) == 3 and isinstance(call.state, tuple):
        name, state = call.args[0], call.state
        if isinstance(name, str) and len(state) == 8 and state[0] == 3 and state[2:] == (None, None, None, -1, -1, 0):
            found = PICKLE_DTYPES.get((name, state[1])) if isinstance(state[1], str) else None
            if found is not None:
                return found
    shown = (call.args, call.state) if isinstance(call, _Call) else call
    raise ValueError(
        f"{where}: dtype {reprlib.repr(shown)} is not one of the plain dtypes {[d.str for d in PICKLE_DTYPES.values()]}"
    )
