"""Write a simulated, crowd-labelled collection to disk (what `lungus simulate` does).

Layout of the output folder (paths in the CSVs are relative to it)::

    manifest.csv      one row per clip: clip, patient, zone, mask, probe, n_frames, fps,
                      truth_bline2, truth_bline3, truth_lus4, crowd_none, crowd_discrete,
                      crowd_confluent, expert_<name>..., sim_* (simulator facts)
    opinions.csv      long-format crowd opinions: clip, rater, label (bline3)
    frames.csv        per-frame truth: clip, frame, time_s, bline_count, discrete_blines,
                      confluent_regions, confluent_share, positions (B-line columns)
    patients.csv      each patient's traits
    clips/<name>.<ext>   the clip (mp4, seq.nrrd or dcm) and <name>.json, its fan in
                      the SlicerUltrasound AnonymizeUltrasound schema (lungus.io.fan.fan_sidecar_record;
                      read_clip uses it)
    masks/<name>.seq.nrrd  uint8 class ids (lungus.data.labels.schemes), one frame per clip
                      frame, gzip-compressed; read back with :func:`read_masks`
    preview.png       optional contact sheet
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.labels.label_images import MASK_SUFFIX
from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.errors import LungUSError
from lungus.io.fan import fan_sidecar_record
from lungus.progress import Progress
from lungus.sim.generator import (
    PlannedClip,
    SimulatedClip,
    SimulationConfig,
    patient_traits,
    plan_collection,
    simulate_planned,
)

if TYPE_CHECKING:
    from lungus.sim.raters import RaterConfig, RaterResult

#: --format value -> clip file suffix.
CLIP_FORMATS = {"mp4": ".mp4", "seq.nrrd": ".seq.nrrd", "dicom": ".dcm"}
PREVIEW_CLIPS = 12
FRAME_COLUMNS = [
    "clip",
    "frame",
    "time_s",
    "bline_count",
    "discrete_blines",
    "confluent_regions",
    "confluent_share",
    "positions",
]


@dataclass
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    folder: Path
    manifest: Path
    n_clips: int
    n_patients: int
    n_frames: int
    label_counts: dict[str, dict[str, int]]
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "manifest": str(self.manifest),
            "n_clips": self.n_clips,
            "n_patients": self.n_patients,
            "n_frames": self.n_frames,
            "label_counts": self.label_counts,
            "files": {k: str(v) for k, v in self.files.items()},
        }


def read_masks(path: str | os.PathLike) -> np.ndarray:
    """(T, H, W) uint8 class ids from a mask file written by :func:`write_dataset`."""
    from lungus.io import read_clip

    return read_clip(path, fan=False).frames


def _previous_set_files(out: Path) -> set[Path]:
    """Clip, mask and fan-JSON files an earlier simulated set in ``out`` listed in its manifest
    (only files inside clips/ and masks/ of ``out``)."""
    import csv

    files: set[Path] = set()
    own = {(out / "clips").resolve(), (out / "masks").resolve()}
    try:
        with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for column in ("clip", "mask"):
                    if row.get(column):
                        path = (out / row[column]).resolve()
                        if path.parent in own:
                            files.add(path)
                            if column == "clip":
                                files.add(path.parent / f"{path.name.split('.')[0]}.json")
    except (OSError, csv.Error, UnicodeDecodeError):
        return set()  # not a set we can read: leave its files alone
    return files


def _frame_rows(sim: SimulatedClip, clip_path: str) -> list[list[object]]:
    fps = sim.clip.fps or 1.0
    return [
        [
            clip_path,
            t,
            round(t / fps, 4),
            f.bline_count,
            f.discrete,
            f.confluent_regions,
            round(f.confluent_share, 4),
            " ".join(f"{p:.1f}" for p in f.positions),
        ]
        for t, f in enumerate(sim.frames)
    ]


@dataclass
class _WrittenClips:
    """What writing the clips gave: one manifest row and frames.csv rows per clip."""

    rows: list[dict[str, object]] = field(default_factory=list)
    frame_rows: list[list[object]] = field(default_factory=list)
    preview_items: list[tuple[np.ndarray, np.ndarray, str]] = field(default_factory=list)


def write_dataset(
    folder: str | os.PathLike,
    n_clips: int,
    n_patients: int,
    seed: int = 0,
    config: SimulationConfig | None = None,
    clip_format: str = "mp4",
    preview: bool = False,
    overwrite: bool = False,
    rater_config: RaterConfig | None = None,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Simulate ``n_clips`` clips of ``n_patients`` patients into ``folder``.

    The crowd and expert columns come from lungus.sim.raters.simulate_raters run on the
    truth_bline3 labels. ``progress(done, total, clip_name)`` is called after each clip.
    """
    from lungus.data.manifests.manifest import Manifest

    config = config or SimulationConfig()
    if clip_format not in CLIP_FORMATS:
        raise ValueError(f"clip_format must be one of {', '.join(CLIP_FORMATS)}, got {clip_format!r}")
    plan = plan_collection(n_clips, n_patients, seed)
    out = Path(folder)
    manifest_path = out / "manifest.csv"
    previous = _prepare_folder(out, overwrite)
    written = _write_clips(out, plan, config, seed, CLIP_FORMATS[clip_format], preview, progress)
    raters = _add_rater_columns(written.rows, seed, rater_config)
    files = {"manifest": manifest_path, **_write_tables(out, written, raters, plan, seed)}
    # The manifest goes last: its presence means the set is complete.
    Manifest.from_rows(manifest_path, written.rows).save()
    _remove_stale_files(out, previous, written.rows)
    label_counts = _label_counts(written.rows)
    return DatasetSummary(
        out, manifest_path, len(written.rows), n_patients, sum(int(row["n_frames"]) for row in written.rows),
        label_counts, files,
    )


def _prepare_folder(out: Path, overwrite: bool) -> set[Path]:
    """Check ``out`` may take a set, make clips/ and masks/, and return the files of the
    set it held before (when overwriting), for :func:`_remove_stale_files`."""
    manifest_path = out / "manifest.csv"
    if out.exists() and not out.is_dir():
        raise LungUSError("exists and is not a folder; choose a new output folder", out)
    if manifest_path.exists() and not overwrite:
        raise LungUSError("already holds a manifest.csv; choose another folder or pass --overwrite", out)
    previous = _previous_set_files(out) if manifest_path.exists() else set()
    (out / "clips").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    return previous


def _write_clips(
    out: Path,
    plan: list[PlannedClip],
    config: SimulationConfig,
    seed: int,
    suffix: str,
    preview: bool,
    progress: Progress | None,
) -> _WrittenClips:
    """Simulate and write every planned clip: the clip, its fan JSON and its masks."""
    from lungus.data.labels.label_images import write_label_masks
    from lungus.io import write_clip

    written = _WrittenClips()
    for planned in plan:
        sim = simulate_planned(planned, config, seed)
        clip_rel = f"clips/{sim.name}{suffix}"
        mask_rel = f"masks/{sim.name}{MASK_SUFFIX}"
        write_clip(sim.clip, out / clip_rel)
        atomic_write_text(out / "clips" / f"{sim.name}.json", json.dumps(fan_sidecar_record(sim.clip.fan), indent=1))
        write_label_masks(out / mask_rel, sim.masks, fps=sim.clip.fps, spacing_mm=sim.clip.spacing_mm)
        written.rows.append(_manifest_row(sim, clip_rel, mask_rel))
        written.frame_rows.extend(_frame_rows(sim, clip_rel))
        if preview and len(written.preview_items) < PREVIEW_CLIPS:
            written.preview_items.append(_preview_item(sim))
        if progress is not None:
            progress(len(written.rows), len(plan), sim.name)
    return written


def _manifest_row(sim: SimulatedClip, clip_rel: str, mask_rel: str) -> dict[str, object]:
    """A clip's manifest row: its files, truth labels and simulator facts (raters come later)."""
    counts = sim.counts
    return {
        "clip": clip_rel,
        "patient": sim.patient,
        "zone": sim.zone,
        **{f"truth_{scheme}": label for scheme, label in sim.labels.items()},
        "mask": mask_rel,
        "probe": sim.probe,
        "n_frames": sim.clip.n_frames,
        "fps": f"{sim.clip.fps:g}",
        "sim_state": sim.state,
        "sim_max_blines": int(counts.max()) if counts.size else 0,
        "sim_mean_blines": round(float(counts.mean()), 3) if counts.size else 0.0,
        "sim_consolidation_mm": round(sim.consolidation_mm, 1),
    }


def _add_rater_columns(
    rows: list[dict[str, object]], seed: int, rater_config: RaterConfig | None
) -> RaterResult:
    """Simulate crowd and expert readers of each clip's truth_bline3 label and add their
    columns to ``rows``; the raters also give opinions.csv."""
    from lungus.sim.raters import simulate_raters

    raters = simulate_raters(
        [row["truth_bline3"] for row in rows], [row["patient"] for row in rows], seed, rater_config
    )
    for column, values in raters.manifest_columns().items():
        for row, value in zip(rows, values):
            row[column] = value
    return raters


def _write_tables(
    out: Path, written: _WrittenClips, raters: RaterResult, plan: list[PlannedClip], seed: int
) -> dict[str, Path]:
    """opinions.csv, frames.csv, patients.csv and the optional preview.png (not the manifest)."""
    from lungus.data.csvfile import write_csv_table
    from lungus.data.labels.opinions import Opinions

    files = {}
    clip_names = [str(row["clip"]) for row in written.rows]
    files["opinions"] = Opinions.from_rows(raters.opinion_rows(clip_names)).save(out / "opinions.csv")
    files["frames"] = write_csv_table(out / "frames.csv", FRAME_COLUMNS, written.frame_rows)
    patient_rows = [patient_traits(seed, p).to_dict() for p in sorted({c.patient_index for c in plan})]
    files["patients"] = write_csv_table(
        out / "patients.csv", list(patient_rows[0]), [list(r.values()) for r in patient_rows]
    )
    if written.preview_items:
        from lungus.sim.preview import contact_sheet, write_png

        files["preview"] = write_png(contact_sheet(written.preview_items), out / "preview.png")
    return files


def _remove_stale_files(out: Path, previous: set[Path], rows: list[dict[str, object]]) -> None:
    """An overwritten set's clips that the new set does not have would linger in
    clips/ and masks/ and confuse folder-based tools: remove them."""
    written = {(out / str(row[column])).resolve() for row in rows for column in ("clip", "mask")}
    written |= {
        (out / "clips" / f"{Path(str(row['clip'])).name.split('.')[0]}.json").resolve() for row in rows
    }
    for stale in previous - written:
        stale.unlink(missing_ok=True)


def _label_counts(rows: list[dict[str, object]]) -> dict[str, dict[str, int]]:
    """Clips per truth label, per scheme."""
    label_counts: dict[str, dict[str, int]] = {}
    for scheme in LABEL_SCHEMES:
        values = [str(row[f"truth_{scheme}"]) for row in rows]
        label_counts[scheme] = {v: values.count(v) for v in sorted(set(values))}
    return label_counts


def _preview_item(sim: SimulatedClip) -> tuple[np.ndarray, np.ndarray, str]:
    """The frame with the most B-lines (the middle one if none) and its caption."""
    counts = sim.counts
    t = int(np.argmax(counts)) if counts.size and counts.max() > 0 else sim.clip.n_frames // 2
    caption = f"{sim.name} {sim.probe} {sim.labels['bline3']} LUS{sim.labels['lus4']} n={counts[t]}"
    return sim.clip.frames[t], sim.masks[t], caption
