"""The Python-console API: B-line inference from Slicer's Python console or a script.

In Slicer's Python console (``slicer.mrmlScene`` is the scene)::

    import LungUSInferenceLib as lus
    result = lus.analyse("/data/scan.mp4", "/models/bline2.pt", segmenter="/models/seg.pt")
    result.pred, result.probabilities, result.top_frame      # per clip
    result.p_blines, result.bline_count, result.blas         # per frame (result.frames)

    # the clip and its results in the scene, playing together
    loaded, nodes = lus.analyse_into_scene(slicer.mrmlScene, "/data/scan.mp4", "/models/bline2.pt",
                                           segmenter="/models/seg.pt", explain="gradcam")

    # many clips, in this process (a script; the LungUSInference panel runs a subprocess instead)
    summary = lus.run_batch(["/data/clips/"], "/models/bline2.pt", "/data/results",
                            segmenter="/models/seg.pt", progress=print)
    summary.line()            # "scored 190 of 200 clips; 10 failed ..."; /data/results/clips.csv

    # the clips worth reviewing first (docs/review.md#review-queue), also written as a CSV
    queue = lus.review_queue(["/data/results"], "/data/queue.csv", manifest="/data/manifest.csv", top=20)
    queue[0].clip, queue[0].score, queue[0].reasons  # why it comes first

Everything runs in the calling process: the GUI waits until it returns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lungus.progress import Progress

if TYPE_CHECKING:
    from lungus.infer.batch import BatchSummary
    from lungus.infer.results import ClipAnalysis
    from lungus.io.clip import Clip
    from lungus.review.queue import QueueEntry, QueueWeights

PathLike = str | os.PathLike


def analyse(
    clip: PathLike | Clip | Any,
    model: PathLike | None,
    segmenter: PathLike | None = None,
    *,
    device: str = "auto",
    explain: str | None = None,
    progress: Progress | None = None,
) -> ClipAnalysis:
    """Analyse one clip: a file (any format lungus reads), a lungus Clip, uint8 frames (T, H, W)
    or a Slicer sequence node. ``model``: classifier model file (or None with a segmenter);
    ``explain``: gradcam, lime, cam or attention. Returns a lungus.infer.ClipAnalysis."""
    from lungus.infer.analyzer import Analyzer

    analyzer = Analyzer(model, segmenter, device=device)
    if hasattr(clip, "GetNumberOfDataNodes"):  # a vtkMRMLSequenceNode
        from LungUSBLinesLib.analysis import analyse_sequence

        return analyse_sequence(analyzer, clip, explain=explain, progress=progress)
    return analyzer.analyse(clip, explain=explain, progress=progress)


def analyse_into_scene(
    scene: Any,
    path: PathLike,
    model: PathLike | None,
    segmenter: PathLike | None = None,
    *,
    device: str = "auto",
    explain: str | None = None,
) -> tuple[Any, Any]:
    """Open a clip file in ``scene`` and record its analysis there (LungUSBLinesLib.results);
    returns (LoadedClip, AnalysisNodes)."""
    from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.results import add_analysis_to_scene

    analyzer = AnalyzerCache().get(model, segmenter, device=device)
    loaded = load_clip(scene, path)
    analysis = analyse_sequence(analyzer, loaded.nodes.sequence, clip=loaded.clip, explain=explain)
    return loaded, add_analysis_to_scene(scene, loaded.nodes, analysis)


def run_batch(
    inputs: Sequence[PathLike] | PathLike,
    model: PathLike | None,
    out: PathLike,
    segmenter: PathLike | None = None,
    *,
    progress: Progress | None = None,
    device: str = "auto",
    overlays: bool = False,
    explain: str | None = None,
    resume: bool = False,
    workers: int = 0,
) -> BatchSummary:
    """Analyse every clip of ``inputs`` (files, folders, manifest CSVs) into ``out``: clips.csv,
    frames.csv, clips.jsonl (lungus.infer.run_batch). A bad clip is recorded with its error and
    the run goes on. ``progress(done, total, clip)`` after each clip."""
    from lungus.infer.analyzer import Analyzer
    from lungus.infer.batch import BatchRequest
    from lungus.infer.batch import run_batch as engine_run_batch

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    analyzer = Analyzer(model, segmenter, device=device)
    request = BatchRequest([os.fspath(p) for p in inputs], out, workers=workers, overlays=overlays,
                           explain=explain, resume=resume)
    return engine_run_batch(analyzer, request, progress=progress)


def review_queue(
    results: Sequence[PathLike] | PathLike,
    out: PathLike | None = None,
    *,
    manifest: PathLike | None = None,
    top: int | None = None,
    label_source: str | None = None,
    threshold: float = 0.5,
    weights: QueueWeights | dict[str, float] | None = None,
) -> list[QueueEntry]:
    """The clips of ``results`` (`lungus infer` output folders, as run_batch writes; several for
    an ensemble's members) ranked by how much a review would teach, first first; with ``out``
    also written there as a queue CSV (what `lungus review-queue` writes and the review module
    walks). ``manifest``: patients, zones, reference labels (``label_source``) and masks;
    ``weights``: a lungus.review.queue.QueueWeights or {signal: weight}. Each entry's ``reasons``
    holds every signal behind its score (lungus.review.queue.review_queue)."""
    from lungus.review.queue import QueueConfig, QueueWeights, write_queue_csv
    from lungus.review.queue import review_queue as engine_review_queue

    if isinstance(results, (str, os.PathLike)):
        results = [results]
    if isinstance(weights, dict):
        weights = QueueWeights(**weights)
    config = QueueConfig(weights=weights or QueueWeights(), threshold=threshold, label_source=label_source)
    entries = engine_review_queue(list(results), manifest=manifest, config=config, top=top)
    if out is not None:
        write_queue_csv(entries, out)
    return entries
