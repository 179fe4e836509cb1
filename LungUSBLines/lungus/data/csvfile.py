"""Reading and writing the project's CSV files (manifests, opinions): one place for the file errors."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lungus.atomic import atomic_path, atomic_write_text
from lungus.errors import LungUSError


def read_csv_table(path: str | os.PathLike, what: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (file line, fields) per non-blank row of a CSV; LungUSError if it cannot be read.

    ``what`` names the file in messages ("manifest", "opinions file"). Header names are
    stripped of surrounding whitespace; a UTF-8 byte-order mark (Excel) is accepted.
    """
    path = Path(path)
    if not path.exists():
        raise LungUSError(f"{what} not found", path)
    if path.is_dir():
        raise LungUSError(f"is a folder; expected a CSV {what}", path)
    if not path.is_file():  # a FIFO would block the read forever
        raise LungUSError(f"not a regular file (a FIFO, socket or device); expected a CSV {what}", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise LungUSError(
            f"not a UTF-8 text CSV {what} (byte {error.start} cannot be decoded)", path
        ) from None
    except OSError as error:
        raise LungUSError(f"cannot read {what}: {error.strerror or error}", path) from None
    if "\x00" in text:
        raise LungUSError(f"not a text CSV {what} (it contains NUL bytes)", path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank line
            if header is None:
                header = [name.strip() for name in fields]
            else:
                rows.append((reader.line_num, fields))
    except csv.Error as error:
        raise LungUSError(f"line {reader.line_num}: malformed CSV {what}: {error}", path) from None
    if header is None:
        raise LungUSError(f"empty {what}; expected a CSV header line", path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise LungUSError(f"line 1: column {', '.join(map(repr, duplicates))} appears more than once", path)
    if "" in header:
        raise LungUSError(f"line 1: column {header.index('') + 1} has no name", path)
    return header, rows


def write_csv_table(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV atomically (temporary file in the same folder, then rename)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: empty for None or a blank string, floats exactly (repr), else str."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_records_csv(path: str | os.PathLike, columns: Sequence[str], records: Iterable[dict[str, Any]]) -> Path:
    """Write dict records as a CSV with these columns, streamed to a temporary file then renamed
    (a batch's frames.csv can be large); a column a record lacks is an empty cell."""
    path = Path(path)
    with atomic_path(path, suffix=".csv") as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            for record in records:
                writer.writerow([csv_cell(record.get(column)) for column in columns])
    return path
