"""Readers for users' text files, with errors that name the file, the line and the fix.

* :func:`read_records` reads CSV / TSV (header row) or JSON Lines (one object a line)
  and returns the wanted columns of every row with its line number.
* :func:`read_conll` reads CoNLL-style token files: ``token<TAB>tag`` (or space-separated
  columns, the tag last) one token a line, a blank line between sentences.

Files are decoded whole up front, so a bad byte is reported with its line too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".txt",)


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
