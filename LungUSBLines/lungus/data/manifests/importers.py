"""Importers that turn public lung-ultrasound datasets into a lungus manifest.

COVID-BLUES (Wiedemann et al., IEEE JBHI 2025; CC BY-NC-ND 4.0, cite the paper): a folder
with ``severity.csv`` (``video_file, Severity Score, A-lines, B-lines, comments``) and
``lus_videos/patient_<ID>_<zone>[_<n>].<ext>``::

    python -m lungus.data.manifests.importers covid-blues path/to/covid-blues manifests/covid_blues.csv

writes a manifest (docs/architecture.md#manifest) with ``clip`` (relative to the manifest's own
folder, so ``../`` where the data lives elsewhere), ``patient``, ``zone``, ``bline2``
(B-lines yes/no -> present/absent) and ``lus4`` (the severity score 0-3), and the
``alines`` yes/no as an extra column. The free-text comments are not copied.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lungus.data.csvfile import read_csv_table
from lungus.data.labels.schemes import normalise_label
from lungus.errors import LungUSError

COVID_BLUES_NAME = re.compile(r"^(?P<patient>patient_\d+)_(?P<zone>[LR]\d+)(?:_\d+)?$", re.IGNORECASE)
COVID_BLUES_COLUMNS = ("video_file", "Severity Score", "B-lines")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mpeg", ".mpg", ".gif", ".m4v")


@dataclass
class ImportResult:
    """What an importer wrote: the manifest, how many clips and patients, and rows left out."""

    manifest: Path
    n_clips: int
    n_patients: int
    missing: list[str] = field(default_factory=list)  # names in the label file with no clip file


def _find_video(video_folder: Path, name: str) -> Path | None:
    for suffix in VIDEO_SUFFIXES:
        for candidate in (video_folder / f"{name}{suffix}", video_folder / f"{name}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def import_covid_blues(folder: str | os.PathLike, out_csv: str | os.PathLike) -> ImportResult:
    """Write a manifest for a COVID-BLUES folder (the full set or a patient subset).

    Rows whose video file is missing are left out and listed in ``ImportResult.missing``;
    a label that is not yes/no or 0-3 raises LungUSError naming the line.
    """
    from lungus.data.manifests.manifest import Manifest

    folder = Path(folder)
    labels_path = folder / "severity.csv"
    video_folder = folder / "lus_videos"
    if not folder.is_dir():
        raise LungUSError("COVID-BLUES folder not found", folder)
    if not video_folder.is_dir():
        raise LungUSError("no lus_videos folder: is this the COVID-BLUES dataset folder?", folder)
    header, table = read_csv_table(labels_path, "COVID-BLUES label file")
    lacking = [name for name in COVID_BLUES_COLUMNS if name not in header]
    if lacking:
        raise LungUSError(f"line 1: missing column {', '.join(lacking)}", labels_path)
    out_csv = Path(out_csv)
    base = out_csv.parent.resolve()
    position = {name: header.index(name) for name in header}

    def cell(fields: list[str], name: str) -> str:
        index = position.get(name)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    rows, missing = [], []
    for line, fields in table:
        name = cell(fields, "video_file")
        match = COVID_BLUES_NAME.match(name)
        if not match:
            raise LungUSError(f"line {line}: video_file {name!r} is not patient_<ID>_<zone>", labels_path)
        try:
            bline2 = normalise_label("bline2", cell(fields, "B-lines"))
            lus4 = normalise_label("lus4", cell(fields, "Severity Score"))
        except ValueError as error:
            raise LungUSError(f"line {line}: {error}", labels_path) from None
        video = _find_video(video_folder, name)
        if video is None:
            missing.append(name)
            continue
        alines = cell(fields, "A-lines").lower()
        rows.append({
            "clip": Path(os.path.relpath(video.resolve(), base)).as_posix(),
            "patient": match["patient"].lower(),
            "zone": match["zone"].upper(),
            "bline2": bline2 or "",
            "lus4": lus4 or "",
            "alines": alines if alines in ("yes", "no") else "",
        })
    if not rows:
        raise LungUSError("no clip of severity.csv was found in lus_videos", folder)
    Manifest.from_rows(out_csv, rows).save()
    return ImportResult(out_csv, len(rows), len({row["patient"] for row in rows}), missing)


IMPORTERS = {"covid-blues": import_covid_blues}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lungus.data.manifests.importers", description="Write a lungus manifest for a public LUS dataset."
    )
    parser.add_argument("dataset", choices=sorted(IMPORTERS), help="which dataset layout the folder has")
    parser.add_argument("folder", help="the dataset's folder")
    parser.add_argument("out_csv", help="manifest to write (clip paths are made relative to its folder)")
    args = parser.parse_args(argv)
    try:
        result = IMPORTERS[args.dataset](args.folder, args.out_csv)
    except LungUSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{result.manifest}: {result.n_clips} clips, {result.n_patients} patients")
    for name in result.missing:
        print(f"warning: no video for {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
