"""Analyse a clip of the scene in a background process, so Slicer's window stays live.

Importing torch, loading the models, preparing the fan and running them take seconds to
minutes; in Slicer's main thread they freeze the window, and letting events through between
steps lets the user close the scene under a running analysis. An :class:`AnalysisJob` runs
`lungus analyse` instead (a LungUSBLinesLib.processes.EngineProcess, polled from a timer as the
batch panel does), reads its ``--progress-lines``, and when it ends reads the results file
and records the results beside the clip (LungUSBLinesLib.results.add_analysis_to_scene), but
only if the clip's nodes are still in the scene: otherwise it stops the process and adds
nothing. Nothing here needs Qt; it is tested headless with real subprocesses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lungus.errors import LungUSError
from lungus.progress_lines import ProgressLine
from LungUSBLinesLib.analysis import (
    checked_explain,
    checked_models,
    clip_display_name,
    holds_clip,
    step_message,
)
from LungUSBLinesLib.processes import EngineProcess, JobProgress, Launcher, engine_command

if TYPE_CHECKING:
    from lungus.io.clip import Clip
    from LungUSBLinesLib.results import AnalysisNodes

#: `lungus analyse --progress-lines`: ``progress DONE/TOTAL STEP``.
RESULTS_FILE = "analysis.npz"
EXPORTED_CLIP_FILE = "clip.seq.nrrd"
#: Seconds a stopping job gets to exit after its interrupt before it is terminated.
STOP_GRACE_S = 5.0


def parse_progress_line(line: str) -> JobProgress | None:
    """``progress DONE/TOTAL STEP`` -> JobProgress(DONE/TOTAL, what the step does); else None."""
    parsed = ProgressLine.parse(line)
    if parsed is None:
        return None
    return JobProgress(parsed.fraction, step_message(parsed.what))


@dataclass(frozen=True)
class AnalysisRequest:
    """The models and options of one analysis (the review panel's choices)."""

    classifier: str | None = None
    segmenter: str | None = None
    device: str = "auto"
    explain: str | None = None
    threads: int | None = None

    def checked(self) -> tuple[str | None, str | None, str | None]:
        """(classifier, segmenter, explain) as the job passes them on: absolute model paths, no
        explanation without a classifier. LungUSError for a missing model file, no model at all,
        an unknown device or explanation method."""
        classifier, segmenter = checked_models(self.classifier or None, self.segmenter or None, self.device)
        return classifier, segmenter, checked_explain(self.explain or None, classifier)

    def arguments(self, clip: str | os.PathLike, out: str | os.PathLike, name: str) -> list[str]:
        """The `lungus analyse` arguments (after ``analyse``), the choices checked first."""
        classifier, segmenter, explain = self.checked()
        # --name=...: a node name may start with "-", which argparse would take for an option.
        arguments = [
            os.path.abspath(clip),
            "--out",
            os.path.abspath(out),
            f"--name={name}",
            "--device",
            self.device,
        ]
        if classifier:
            arguments += ["--model", classifier]
        if segmenter:
            arguments += ["--segmenter", segmenter]
        if explain:
            arguments += ["--explain", explain]
        if self.threads is not None:
            arguments += ["--threads", str(int(self.threads))]
        return [*arguments, "--progress-lines"]


class AnalysisJob:
    """One clip of ``scene`` (its sequence ``browser``) analysed by `lungus analyse` in a
    subprocess: :meth:`start`, :meth:`poll` from a timer (``progress`` says how far it is),
    :meth:`cancel`, and :meth:`finish` once it has ended to record the results.

    ``clip``: the engine's own reading of the clip (load_clip's), if at hand: when the
    sequence still holds it, the job reads the file it came from (with its fan sidecar);
    otherwise the sequence's frames go to a temporary .seq.nrrd. ``python`` and ``launch``
    as for EngineProcess (in Slicer: PythonSlicer through slicer.util.launchConsoleProcess).
    """

    def __init__(
        self,
        scene: Any,
        browser: Any,
        request: AnalysisRequest,
        *,
        clip: Clip | None = None,
        python: str | None = None,
        launch: Launcher | None = None,
    ) -> None:
        if browser is None or not browser.IsA("vtkMRMLSequenceBrowserNode"):
            raise LungUSError("select a loaded clip to analyse")
        if not scene.IsNodePresent(browser) or browser.GetMasterSequenceNode() is None:
            raise LungUSError(f"clip {browser.GetName()!r} is not in the scene")
        self.scene = scene
        self.browser = browser
        self.sequence = browser.GetMasterSequenceNode()
        self.request = request
        self.clip = clip
        self.python = python
        self.launch = launch
        self.folder: Path | None = None
        self.process: EngineProcess | None = None
        self.cancelled = False
        self.clip_closed = False

    # ------------------------------------------------------------------ running
    def start(self) -> AnalysisJob:
        """Start `lungus analyse` on the clip; LungUSError (one line) when it cannot start."""
        if self.process is not None:
            raise RuntimeError("this analysis was already started")
        self.request.checked()  # before writing anything
        self.folder = Path(tempfile.mkdtemp(prefix="lungus-analysis-"))
        try:
            arguments = self.request.arguments(
                self._clip_file(), self.results_file, clip_display_name(self.sequence)
            )
            command = engine_command(self.python, "analyse", arguments)
            self.process = EngineProcess(
                command, parse_progress=parse_progress_line, launch=self.launch
            ).start()
        except BaseException:
            self._remove_files()
            raise
        return self

    @property
    def results_file(self) -> Path:
        return self.folder / RESULTS_FILE

    def _clip_file(self) -> Path:
        """The file the engine read the clip from when the sequence still holds it, else the
        sequence's frames written to the job's folder."""
        if (
            holds_clip(self.sequence, self.clip)
            and self.clip.source is not None
            and Path(self.clip.source).exists()
        ):
            return Path(self.clip.source)
        from lungus.io import write_clip
        from LungUSBLinesLib.sequences import sequence_to_clip

        return write_clip(sequence_to_clip(self.sequence), self.folder / EXPORTED_CLIP_FILE)

    def clip_present(self) -> bool:
        """Whether the analysed clip (its browser and sequence) is still in the scene."""
        return (
            bool(self.scene.IsNodePresent(self.browser))
            and bool(self.scene.IsNodePresent(self.sequence))
            and self.browser.GetMasterSequenceNode() is self.sequence
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    @property
    def progress(self) -> JobProgress | None:
        return None if self.process is None else self.process.progress

    def poll(self) -> bool:
        """Read the job's new output (never blocks long); True while it runs. A job whose clip
        left the scene is stopped: there is nothing to record its results beside."""
        if self.process is None:
            return False
        self.process.poll()
        if self.process.running and not self.clip_present():
            self.clip_closed = True
            self.process.cancel(grace_s=STOP_GRACE_S)
            self.process.poll()
        return self.running

    def cancel(self, *, wait: bool = True) -> None:
        """Stop the job; :meth:`finish` then adds nothing. With ``wait`` this returns when its
        process has ended; without (the panel), at once, and :meth:`poll` says when it has."""
        self.cancelled = True
        if self.process is not None:
            self.process.cancel(grace_s=STOP_GRACE_S, wait=wait)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job ends (scripts and tests; the panel polls)."""
        if self.process is not None:
            self.process.wait(timeout)

    # ------------------------------------------------------------------ ending
    def finish(self) -> AnalysisNodes | None:
        """After the job has ended: its results recorded beside the clip (AnalysisNodes), or None
        when it was cancelled. LungUSError, with nothing added, when the job failed or the clip
        left the scene meanwhile. The job's temporary files are removed either way."""
        if self.running:
            raise RuntimeError("the analysis is still running: poll it until it ends, or cancel it")
        try:
            if self.clip_closed or not self.clip_present():
                raise LungUSError(
                    f"clip {self.sequence.GetName()!r} was closed during the analysis; no results were added"
                )
            if self.cancelled or self.process is None:
                return None
            if self.process.returncode != 0:
                raise LungUSError(f"the analysis failed: {self.process.error_message()}")
            from lungus.infer.results import read_analysis_file
            from LungUSBLinesLib.results import add_analysis_to_scene

            return add_analysis_to_scene(self.scene, self.browser, read_analysis_file(self.results_file))
        finally:
            self._remove_files()

    def close(self) -> None:
        """Stop the job if it runs and remove its files (module cleanup, scene close)."""
        if self.running:
            self.cancel()
        self._remove_files()

    def _remove_files(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
