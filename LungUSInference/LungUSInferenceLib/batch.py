"""Batch inference as a `lungus infer` subprocess: the command line, its progress, its results.

The panel (and scripts) describe a run with a :class:`BatchRequest`, start it with
:func:`start_batch` (a LungUSBLinesLib.processes.EngineProcess that reads `lungus infer
--progress-lines` output without blocking) and, when it ends, load DIR/clips.csv into a table
node with :func:`load_batch_results`; clips that failed keep their error in its ``error`` column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungus.device import DEFAULT_DEVICE, check_device_name
from lungus.errors import LungUSError
from lungus.progress_lines import ProgressLine
from LungUSBLinesLib.processes import EngineProcess, JobProgress, Launcher, engine_command

CLIPS_CSV = "clips.csv"
FRAMES_CSV = "frames.csv"
#: The review queue the panel writes beside a run's clips.csv (docs/review.md#reviewing-in-slicer).
REVIEW_QUEUE_CSV = "review_queue.csv"
# On a results table node: the clips.csv it shows, so loading it again refreshes that node.
RESULTS_FILE_ATTRIBUTE = "LungUS.resultsFile"


@dataclass
class BatchRequest:
    """One `lungus infer` run: ``inputs`` (clip files, folders, manifest CSVs), the models, ``out``."""

    inputs: list[str]
    out: str
    model: str | None = None
    segmenter: str | None = None
    device: str = DEFAULT_DEVICE
    overlays: bool = False
    explain: bool = False
    resume: bool = False
    workers: int | None = None
    threads: int | None = None
    extra_arguments: list[str] = field(default_factory=list)

    def validate(self) -> BatchRequest:
        """LungUSError (one line) for what would make the run fail at once; returns self."""
        if not self.inputs:
            raise LungUSError("no inputs: choose clip files, a folder of clips or a manifest CSV")
        for given in self.inputs:
            if not Path(given).exists():
                raise LungUSError("no such file or folder", given)
        if not self.model and not self.segmenter:
            raise LungUSError("choose a classifier model file, a segmenter model file, or both")
        for path in (self.model, self.segmenter):
            if path and not Path(path).is_file():
                raise LungUSError("no such model file", path)
        if not str(self.out).strip():
            raise LungUSError("choose an output folder")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise LungUSError("the output must be a folder, not a file", self.out)
        check_device_name(str(self.device))
        if self.explain and not self.model:
            raise LungUSError("explanations (Grad-CAM) need a classifier model")
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (int(value) < (0 if name == "workers" else 1)):
                raise LungUSError(f"{name} must be {'0' if name == 'workers' else '1'} or more, got {value}")
        return self

    def arguments(self) -> list[str]:
        """The `lungus infer` arguments (after ``infer``)."""
        arguments = [*(os.fspath(p) for p in self.inputs), "--out", os.fspath(self.out)]
        if self.model:
            arguments += ["--model", os.fspath(self.model)]
        if self.segmenter:
            arguments += ["--segmenter", os.fspath(self.segmenter)]
        arguments += ["--device", self.device]
        if self.workers is not None:
            arguments += ["--workers", str(int(self.workers))]
        if self.threads is not None:
            arguments += ["--threads", str(int(self.threads))]
        if self.overlays:
            arguments.append("--overlays")
        if self.explain:
            arguments.append("--explain")
        if self.resume:
            arguments.append("--resume")
        return [*arguments, "--progress-lines", "--quiet", *self.extra_arguments]

    def command(self, python: str | None = None) -> list[str]:
        """``[python, -m, lungus, infer, ...]`` after validating (python: PythonSlicer in Slicer)."""
        self.validate()
        return engine_command(python, "infer", self.arguments())


def parse_progress_line(line: str) -> JobProgress | None:
    """`lungus infer --progress-lines` output: ``progress DONE/TOTAL CLIP`` -> JobProgress."""
    progress = ProgressLine.parse(line)
    if progress is None:
        return None
    done, total = int(progress.done), int(progress.total)
    return JobProgress(progress.fraction, f"{done} of {total} clips: {Path(progress.what).name}")


def start_batch(
    request: BatchRequest, *, python: str | None = None, launch: Launcher | None = None
) -> EngineProcess:
    """Start `lungus infer` for ``request``; poll the returned process for output and progress."""
    command = request.command(python)
    Path(request.out).mkdir(parents=True, exist_ok=True)
    return EngineProcess(command, parse_progress=parse_progress_line, launch=launch).start()


@dataclass
class BatchResults:
    """A finished run's clips.csv in the scene: the table node and who failed, with why."""

    table: Any
    clips_csv: Path
    n_clips: int
    failed: list[tuple[str, str]]

    @property
    def n_scored(self) -> int:
        return self.n_clips - len(self.failed)

    def describe(self) -> str:
        text = f"{self.n_scored} of {self.n_clips} clips scored"
        if self.failed:
            text += f"; {len(self.failed)} failed:"
            text += "".join(f"\n  {Path(clip).name}: {error}" for clip, error in self.failed)
        return text


def results_written(out: str | os.PathLike, since: float | None = None) -> bool:
    """Whether ``out``/clips.csv exists, and was written at or after ``since`` (a time.time()
    value, e.g. when the run started) so an earlier run's file does not count."""
    path = Path(out) / CLIPS_CSV
    if not path.is_file():
        return False
    return since is None or path.stat().st_mtime >= since - 1.0  # file-system clocks are coarse


def _results_table(scene: Any, clips_csv: Path) -> Any | None:
    """The table node an earlier load of ``clips_csv`` (any CSV the panel shows) made, if it is still in the scene."""
    tables = scene.GetNodesByClass("vtkMRMLTableNode")
    for index in range(tables.GetNumberOfItems()):
        node = tables.GetItemAsObject(index)
        if node.GetAttribute(RESULTS_FILE_ATTRIBUTE) == str(clips_csv):
            return node
    return None


def load_batch_results(scene: Any, out: str | os.PathLike, name: str | None = None) -> BatchResults:
    """Read ``out``/clips.csv (or a clips.csv path) into a table node of ``scene``. Loading the
    same results again refreshes the node it made the first time (same ID, new rows)."""
    from LungUSBLinesLib.tables import read_csv_table, table_records

    path = Path(out)
    if path.is_dir():
        path = path / CLIPS_CSV
    if not path.is_file():
        raise LungUSError("no clips.csv here: the run wrote no results", path)
    path = path.resolve()
    table = read_csv_table(
        scene, path, name or f"LungUS results {path.parent.name}", table=_results_table(scene, path)
    )
    table.SetAttribute(RESULTS_FILE_ATTRIBUTE, str(path))
    records = table_records(table)
    failed = [(str(r.get("clip")), str(r["error"])) for r in records if r.get("error")]
    return BatchResults(table=table, clips_csv=path, n_clips=len(records), failed=failed)


@dataclass
class ReviewQueueTable:
    """A run's review queue in the scene: the CSV written beside clips.csv and its table node."""

    table: Any
    queue_csv: Path
    n_clips: int

    def describe(self) -> str:
        return (
            f"{self.n_clips} clips ranked by how much a review would teach: {self.queue_csv}\n"
            "Walk it in LungUS B-lines, Review (Queue, Next / Previous)."
        )


def make_review_queue(scene: Any, out: str | os.PathLike, name: str | None = None) -> ReviewQueueTable:
    """Rank the clips of the run in ``out`` for review (lungus.review.queue, as `lungus
    review-queue` does), write ``out``/review_queue.csv and show it as a table node of ``scene``
    (made again, the same node is refreshed)."""
    from LungUSBLinesLib.tables import read_csv_table
    from LungUSInferenceLib.console import review_queue

    folder = Path(out)
    if not (folder / CLIPS_CSV).is_file():
        raise LungUSError("no clips.csv here: run the batch first", folder)
    path = (folder / REVIEW_QUEUE_CSV).resolve()
    entries = review_queue(folder, path)
    table = read_csv_table(scene, path, name or f"LungUS review queue {folder.name}", table=_results_table(scene, path))
    table.SetAttribute(RESULTS_FILE_ATTRIBUTE, str(path))
    return ReviewQueueTable(table=table, queue_csv=path, n_clips=len(entries))
