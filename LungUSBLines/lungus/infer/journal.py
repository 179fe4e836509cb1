"""The journal of a batch run (DIR/clips.jsonl) and the tables written from it.

While a run goes, each finished clip's record is appended to the journal whole and synced to
the disk (a failed append is cut back, so the file never ends in half a line): a run that stops
keeps what it did, and ``lungus infer --resume`` reads it back. At the end the journal is
rewritten in input order and DIR/clips.csv and DIR/frames.csv are (re)written from it, each
atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lungus.atomic import append_whole, atomic_write_bytes, atomic_write_text, cut_torn_tail
from lungus.data.csvfile import write_records_csv
from lungus.infer.results import FRAME_COLUMNS, clip_columns

JOURNAL = "clips.jsonl"
CLIPS_CSV = "clips.csv"
FRAMES_CSV = "frames.csv"


class Journal:
    """DIR/clips.jsonl while a run appends to it: emptied for a new run; for a resumed one,
    kept, less a torn last line an older version left when killed."""

    def __init__(self, folder: str | os.PathLike, *, resume: bool) -> None:
        self.path = Path(folder) / JOURNAL
        if resume:
            cut_torn_tail(self.path)
        else:
            atomic_write_bytes(self.path, b"")

    def append(self, record: dict[str, Any]) -> None:
        """Add one clip's record, whole and synced (lungus.atomic.append_whole)."""
        append_whole(self.path, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def read_journal(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The clip records of a folder's clips.jsonl (a damaged line, such as the torn last line an
    older version left when killed, is skipped)."""
    path = Path(folder) / JOURNAL
    if not path.is_file():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "clip" in record and "index" in record:
                records.append(record)
    return records


def latest_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per clip (the last written), in input order."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest.pop(record["clip"], None)
        latest[record["clip"]] = record
    return sorted(latest.values(), key=lambda r: (r["index"], r["clip"]))


def write_tables(
    folder: str | os.PathLike, records: Sequence[dict[str, Any]], class_names: list[str] | None
) -> None:
    """clips.jsonl (input order, one line per clip), clips.csv and frames.csv from the records."""
    folder = Path(folder)
    records = latest_records(records)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    atomic_write_text(folder / JOURNAL, text)
    write_records_csv(folder / CLIPS_CSV, clip_columns(class_names), iter(records))
    write_records_csv(
        folder / FRAMES_CSV, FRAME_COLUMNS, (row for record in records for row in record.get("frames") or ())
    )
