"""Run the `lungus` inference engine on a clip that is in the scene.

The models load once (an Analyzer per model choice, kept by :class:`AnalyzerCache`); a clip is
analysed in this process with a progress callback and a cancel flag: what scripts and the
Python console use. The review panel runs the same analysis in a background process instead
(LungUSBLinesLib.analysis_job), so Slicer's window never freezes; both choose the clip and
check the models and the explanation method with the functions here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lungus.device import check_device_name
from lungus.errors import Cancelled, LungUSError
from lungus.explanations import EXPLAIN_METHODS
from lungus.progress import Progress
from LungUSBLinesLib.sequences import sequence_to_clip, stored_clip_summary

if TYPE_CHECKING:
    from lungus.infer.analyzer import Analyzer
    from lungus.infer.results import ClipAnalysis
    from lungus.io.clip import Clip

_STEP_MESSAGES = {
    "load": "loading PyTorch and the models",
    "read": "reading the clip",
    "classify": "classifying windows",
    "explain": "computing the explanation maps",
    "segment": "segmenting frames",
    "done": "done",
}


def step_message(step: str) -> str:
    """What people read for an analysis step the engine reports (read, classify, ...)."""
    return _STEP_MESSAGES.get(step, step)


def _optional_path(path: str | os.PathLike | None, what: str) -> str | None:
    if path is None or not str(path).strip():
        return None
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise LungUSError(f"no such {what} file", resolved)
    return os.fspath(resolved.resolve())


def checked_models(
    classifier: str | os.PathLike | None, segmenter: str | os.PathLike | None, device: str
) -> tuple[str | None, str | None]:
    """The absolute model paths (None where not given) after checking the files and the device;
    LungUSError for a missing file, no model at all or an unknown device."""
    classifier = _optional_path(classifier, "classifier model")
    segmenter = _optional_path(segmenter, "segmenter model")
    if classifier is None and segmenter is None:
        raise LungUSError("choose a classifier model file, a segmenter model file, or both")
    check_device_name(str(device))
    return classifier, segmenter


def checked_explain(explain: str | None, classifier: object | None) -> str | None:
    """The explanation method to use: None when not asked for or when there is no classifier (a
    segmenter alone has nothing to explain; its masks show what it saw); LungUSError if unknown."""
    if explain is not None and explain not in EXPLAIN_METHODS:
        raise LungUSError(f"explain must be one of {', '.join(EXPLAIN_METHODS)}, got {explain!r}")
    return explain if classifier is not None else None


def is_cancellation(error: BaseException) -> bool:
    """Whether ``error`` says the analysis stopped because it was asked to (lungus.errors.Cancelled),
    not because it failed: by its type, whatever module raised it."""
    return isinstance(error, Cancelled)


class AnalyzerCache:
    """Keeps the last Analyzer so analysing clip after clip loads the models once.

    A different model file, a changed file (same path, new modification time) or another
    device loads them again.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._analyzer: Analyzer | None = None

    def get(
        self,
        classifier: str | os.PathLike | None,
        segmenter: str | os.PathLike | None = None,
        *,
        device: str = "auto",
    ) -> Analyzer:
        classifier, segmenter = checked_models(classifier, segmenter, device)
        key = (
            classifier,
            segmenter,
            device,
            *(os.path.getmtime(p) if p else None for p in (classifier, segmenter)),
        )
        if key != self._key or self._analyzer is None:
            from lungus.infer.analyzer import Analyzer

            self._analyzer = None  # free the old models before loading new ones
            self._analyzer = Analyzer(classifier, segmenter, device=device)
            self._key = key
        return self._analyzer

    def clear(self) -> None:
        self._key, self._analyzer = None, None


def holds_clip(sequence: Any, clip: Clip | None) -> bool:
    """Whether ``sequence`` still shows ``clip`` (the engine's own reading of it, with its fan):
    as many items as the clip has frames."""
    return clip is not None and clip.n_frames == sequence.GetNumberOfDataNodes()


def clip_for_analysis(sequence: Any, clip: Clip | None = None) -> Clip:
    """The clip to analyse for a sequence: ``clip`` when the sequence holds it (holds_clip),
    else the sequence's frames."""
    return clip if holds_clip(sequence, clip) else sequence_to_clip(sequence)


def clip_display_name(sequence: Any) -> str:
    """The name results carry for a clip: its file when lungus read it, else the node name."""
    summary = stored_clip_summary(sequence)
    if summary and summary.get("path"):
        return str(summary["path"])
    return sequence.GetName()


def analyse_sequence(
    analyzer: Analyzer,
    sequence: Any,
    *,
    clip: Clip | None = None,
    explain: str | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ClipAnalysis:
    """Analyse the clip a sequence holds (see lungus.infer.Analyzer.analyse).

    ``explain``: gradcam, lime, cam or attention (needs a classifier). ``progress(done, total, what)``
    (lungus.progress) after each step, ``what`` in words people read; ``cancel()`` returning True stops with lungus.errors.Cancelled.
    """
    explain = checked_explain(explain, analyzer.classifier)

    def report(done: float, total: float, what: str) -> None:
        if progress is not None:
            progress(done, total, step_message(what))

    source = clip_for_analysis(sequence, clip)
    analysis = analyzer.analyse(
        source, name=clip_display_name(sequence), explain=explain, progress=report, cancel=cancel
    )
    analyzer.record_warnings(analysis)  # as the panel's `lungus analyse` job does
    return analysis
