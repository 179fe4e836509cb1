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
                      the SlicerUltrasound AnonymizeUltrasound schema (read_clip uses it)
    masks/<name>.seq.nrrd  uint8 class ids (lungus.data.schemes), one frame per clip
                      frame, gzip-compressed; read back with :func:`read_masks`
    preview.png       optional contact sheet
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.errors import LungUSError
from lungus.io.clip import Clip
from lungus.sim.generator import (
    SimulatedClip,
    SimulationConfig,
    patient_traits,
    plan_collection,
    simulate_planned,
)
from lungus.sim.geometry import ProbeGeometry

#: --format value -> clip file suffix.
CLIP_FORMATS = {"mp4": ".mp4", "seq.nrrd": ".seq.nrrd", "dicom": ".dcm"}
MASK_SUFFIX = ".seq.nrrd"
PREVIEW_CLIPS = 12


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


def fan_json(probe: ProbeGeometry) -> dict:
    """The fan as an AnonymizeUltrasound-style JSON record (angles in OpenCV degrees:
    from the +column axis towards +row, so straight down is 90 and angle1 is the left edge)."""
    record: dict = {"image_size_rows": probe.height, "image_size_cols": probe.width}
    if probe.kind == "convex":
        record.update(
            mask_type="fan",
            angle1=90.0 + probe.half_angle_deg,
            angle2=90.0 - probe.half_angle_deg,
            center_rows_px=probe.apex[0],
            center_cols_px=probe.apex[1],
            radius1=probe.radii[0],
            radius2=probe.radii[1],
        )
    else:
        row0, col0, row1, col1 = probe.rect
        record.update(
            mask_type="rectangle",
            rectangle_top=row0,
            rectangle_left=col0,
            rectangle_bottom=row1,
            rectangle_right=col1,
        )
    return record


def read_masks(path: str | os.PathLike) -> np.ndarray:
    """(T, H, W) uint8 class ids from a mask file written by :func:`write_dataset`."""
    from lungus.io import read_clip

    return read_clip(path, fan=False).frames


def _write_masks(sim: SimulatedClip, path: Path) -> None:
    from lungus.io import write_clip

    masks = Clip(
        frames=sim.masks, fps=sim.clip.fps, spacing_mm=sim.clip.spacing_mm, meta={"labels": "lungus classes"}
    )
    write_clip(masks, path, compression="gzip")


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


def write_dataset(
    folder: str | os.PathLike,
    n_clips: int,
    n_patients: int,
    seed: int = 0,
    config: SimulationConfig | None = None,
    clip_format: str = "mp4",
    preview: bool = False,
    overwrite: bool = False,
    rater_config=None,
    progress: Callable[[int, int, str], None] | None = None,
) -> DatasetSummary:
    """Simulate ``n_clips`` clips of ``n_patients`` patients into ``folder``.

    The crowd and expert columns come from lungus.sim.raters.simulate_raters run on the
    truth_bline3 labels. ``progress(done, total, clip_name)`` is called after each clip.
    """
    from lungus.data.csvfile import write_csv_table
    from lungus.data.manifest import Manifest
    from lungus.data.opinions import Opinions
    from lungus.io import write_clip
    from lungus.sim.raters import simulate_raters

    config = config or SimulationConfig()
    if clip_format not in CLIP_FORMATS:
        raise ValueError(f"clip_format must be one of {', '.join(CLIP_FORMATS)}, got {clip_format!r}")
    plan = plan_collection(n_clips, n_patients, seed)
    out = Path(folder)
    manifest_path = out / "manifest.csv"
    if out.exists() and not out.is_dir():
        raise LungUSError("exists and is not a folder; choose a new output folder", out)
    if manifest_path.exists() and not overwrite:
        raise LungUSError("already holds a manifest.csv; choose another folder or pass --overwrite", out)
    previous = _previous_set_files(out) if manifest_path.exists() else set()
    (out / "clips").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)

    suffix = CLIP_FORMATS[clip_format]
    rows: list[dict[str, object]] = []
    frame_rows: list[list[object]] = []
    preview_items = []
    n_frames = 0
    for planned in plan:
        sim = simulate_planned(planned, config, seed)
        clip_rel = f"clips/{sim.name}{suffix}"
        mask_rel = f"masks/{sim.name}{MASK_SUFFIX}"
        write_clip(sim.clip, out / clip_rel)
        atomic_write_text(out / "clips" / f"{sim.name}.json", json.dumps(fan_json(sim.geometry), indent=1))
        _write_masks(sim, out / mask_rel)
        counts = sim.counts
        rows.append(
            {
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
        )
        frame_rows.extend(_frame_rows(sim, clip_rel))
        n_frames += sim.clip.n_frames
        if preview and len(preview_items) < PREVIEW_CLIPS:
            preview_items.append(_preview_item(sim))
        if progress is not None:
            progress(len(rows), len(plan), sim.name)

    raters = simulate_raters(
        [row["truth_bline3"] for row in rows], [row["patient"] for row in rows], seed, rater_config
    )
    for column, values in raters.manifest_columns().items():
        for row, value in zip(rows, values):
            row[column] = value

    files = {"manifest": manifest_path}
    clip_names = [str(row["clip"]) for row in rows]
    files["opinions"] = Opinions.from_rows(raters.opinion_rows(clip_names)).save(out / "opinions.csv")
    files["frames"] = write_csv_table(
        out / "frames.csv",
        [
            "clip",
            "frame",
            "time_s",
            "bline_count",
            "discrete_blines",
            "confluent_regions",
            "confluent_share",
            "positions",
        ],
        frame_rows,
    )
    patient_rows = [patient_traits(seed, p).to_dict() for p in sorted({c.patient_index for c in plan})]
    files["patients"] = write_csv_table(
        out / "patients.csv", list(patient_rows[0]), [list(r.values()) for r in patient_rows]
    )
    if preview_items:
        from lungus.sim.preview import contact_sheet, write_png

        files["preview"] = write_png(contact_sheet(preview_items), out / "preview.png")
    # The manifest goes last: its presence means the set is complete.
    Manifest.from_rows(manifest_path, rows).save()
    # An overwritten set's clips that the new set does not have would linger in
    # clips/ and masks/ and confuse folder-based tools: remove them.
    written = {(out / str(row[column])).resolve() for row in rows for column in ("clip", "mask")}
    written |= {
        (out / "clips" / f"{Path(str(row['clip'])).name.split('.')[0]}.json").resolve() for row in rows
    }
    for stale in previous - written:
        stale.unlink(missing_ok=True)

    label_counts: dict[str, dict[str, int]] = {}
    for scheme in ("bline2", "bline3", "lus4"):
        values = [str(row[f"truth_{scheme}"]) for row in rows]
        label_counts[scheme] = {v: values.count(v) for v in sorted(set(values))}
    return DatasetSummary(out, manifest_path, len(rows), n_patients, n_frames, label_counts, files)


def _preview_item(sim: SimulatedClip) -> tuple[np.ndarray, np.ndarray, str]:
    """The frame with the most B-lines (the middle one if none) and its caption."""
    counts = sim.counts
    t = int(np.argmax(counts)) if counts.size and counts.max() > 0 else sim.clip.n_frames // 2
    caption = f"{sim.name} {sim.probe} {sim.labels['bline3']} LUS{sim.labels['lus4']} n={counts[t]}"
    return sim.clip.frames[t], sim.masks[t], caption
