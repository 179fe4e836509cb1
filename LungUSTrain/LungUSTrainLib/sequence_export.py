"""Export Slicer sequences as clip files for training outside Slicer."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lungus.errors import LungUSError
from lungus.progress import Progress
from LungUSBLinesLib.sequences import sequence_to_clip

# Suffix -> what the user sees. "" is a folder of numbered PNG frames.
EXPORT_FORMATS: dict[str, str] = {
    ".seq.nrrd": "Slicer sequence (.seq.nrrd)",
    ".mp4": "MP4 video (.mp4)",
    ".npz": "NumPy archive (.npz)",
    "": "Folder of PNG frames",
}


@dataclass(frozen=True)
class ExportResult:
    """One sequence's export: ``path`` when written, ``error`` (one line) when not."""

    sequence_name: str
    path: Path | None
    error: str | None = None


def _file_name(name: str) -> str:
    # Node names are free text. Dots go too: "a.b" would read as a file with suffix ".b".
    cleaned = re.sub(r"[^\w\- ]+", "_", name).strip(" _")
    return cleaned or "clip"


def export_sequence(sequence: Any, path: str | os.PathLike) -> Path:
    """Write one sequence of 2-D frames as a clip; the format follows the suffix of ``path``
    (any lungus.io.write_clip format; no suffix: a folder of PNG frames). Returns the path."""
    from lungus.io import write_clip  # OpenCV, pydicom: loaded only when exporting

    return Path(write_clip(sequence_to_clip(sequence), path))


def export_sequences(
    sequences: Iterable[Any],
    folder: str | os.PathLike,
    suffix: str = ".seq.nrrd",
    *,
    progress: Progress | None = None,
) -> list[ExportResult]:
    """Export each sequence to ``folder``/<its name><suffix>, going on past any that fails.

    Names that collide get a numbered suffix. A failure is recorded in its ExportResult.
    ``progress(done, total, name)`` hears of each sequence done (lungus.progress).
    """
    if suffix not in EXPORT_FORMATS:
        raise LungUSError(
            f"cannot export to {suffix!r}; use one of {', '.join(repr(s) for s in EXPORT_FORMATS)}"
        )
    folder = Path(folder)
    if not folder.is_dir():
        raise LungUSError("the export folder does not exist", folder)
    sequences = list(sequences)
    results: list[ExportResult] = []
    used: set[str] = set()
    for i, sequence in enumerate(sequences):
        stem = _file_name(sequence.GetName())
        unique, count = stem, 1
        while unique.lower() in used or (folder / f"{unique}{suffix}").exists():
            count += 1
            unique = f"{stem}-{count}"
        used.add(unique.lower())
        try:
            results.append(
                ExportResult(sequence.GetName(), export_sequence(sequence, folder / f"{unique}{suffix}"))
            )
        except LungUSError as error:
            results.append(ExportResult(sequence.GetName(), None, str(error)))
        if progress is not None:
            progress(i + 1, len(sequences), sequence.GetName())
    return results
