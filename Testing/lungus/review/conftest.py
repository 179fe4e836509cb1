"""Fixtures of the review tests: small real clips and an empty review folder beside them; and
`lungus infer` output folders written by the batch's own journal writer
(lungus.infer.journal.write_tables) from records with chosen probabilities and B-line frames, so
each signal of the review queue can be checked against a value worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.infer.journal import write_tables


@pytest.fixture
def review_clips(tmp_path) -> list[Path]:
    """Three 5-frame 48x40 grey clips written as Slicer volume sequences under tmp_path/scans/."""
    from lungus.io import Clip, write_clip

    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    return [
        write_clip(Clip(rng.integers(0, 256, (5, 48, 40), dtype=np.uint8), fps=20.0, spacing_mm=(0.3, 0.3)),
                   folder / f"patient{i}_clip.seq.nrrd")
        for i in range(3)
    ]


@pytest.fixture
def reviews(tmp_path):
    """An empty review folder, tmp_path/REVIEWS."""
    from lungus.review.store import ReviewFolder

    return ReviewFolder(tmp_path / "REVIEWS")


def clip_record(index: int, path: Path, probabilities: Sequence[float] | None, task: str = "bline2",
                bline_frames: Sequence[bool] | None = None, error: str = "") -> dict:
    """A clips.jsonl record as the batch writes it: class distribution, and per frame whether the
    segmenter found a B-line (None: no segmenter)."""
    classes = LABEL_SCHEMES[task]
    record: dict = {"index": index, "clip": path.name, "path": str(path), "task": task, "error": error,
                    "classifier": "cls" if probabilities is not None else "", "segmenter": "",
                    "frames": []}
    if probabilities is not None:
        record["probabilities"] = dict(zip(classes, probabilities))
        record.update({f"p_{name}": p for name, p in zip(classes, probabilities)})
        record["pred"] = classes[max(range(len(classes)), key=lambda k: probabilities[k])]
    if bline_frames is not None:
        record["segmenter"] = "seg"
        record["frames"] = [{"clip": path.name, "frame": t, "bline_count": int(b)} for t, b in enumerate(bline_frames)]
        record["frames_with_blines"] = sum(map(bool, bline_frames))
    return record


@pytest.fixture
def write_results(tmp_path):
    """write_results(name, {clip file name: probabilities or (probabilities, bline_frames)}, task="bline2")
    -> the results folder tmp_path/name; clips live in tmp_path/clips (the files need not exist)."""

    def write(name: str, clips: dict, task: str = "bline2", errors: Sequence[str] = ()) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        records = []
        for index, (clip, value) in enumerate(clips.items()):
            probabilities, frames = value if isinstance(value, tuple) else (value, None)
            records.append(clip_record(index, tmp_path / "clips" / clip, probabilities, task, frames))
        for offset, clip in enumerate(errors):
            records.append(clip_record(len(records) + offset, tmp_path / "clips" / clip, None, task,
                                       error="not a video"))
        write_tables(folder, records, list(LABEL_SCHEMES[task]))
        return folder

    return write
