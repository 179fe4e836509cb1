"""Which explanation methods a classifier model file supports, asked of the engine in the background.

Whether a model gives class activation maps or spatial attention is known only by importing
torch, loading the model and running it once: seconds in which Slicer's window would freeze,
and torch in Slicer's own process, which Analyse keeps out (LungUSBLinesLib.analysis_job). An
:class:`ExplanationCheck` runs `lungus analyse --model M --list-explanations` instead (a
LungUSBLinesLib.processes.EngineProcess, polled from a timer), and until it answers offers what
every lungus model file supports. Nothing here needs Qt or torch; it is tested headless with
real subprocesses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lungus.explanations import EVERY_MODEL_EXPLANATIONS
from LungUSBLinesLib import panel
from LungUSBLinesLib.processes import EngineProcess, Launcher, engine_command

#: `lungus` exit status for input it refuses (lungus.cli): here, a file that is not a model.
REFUSED_STATUS = 2
#: Seconds a superseded check gets to stop on its stop file before it is terminated.
STOP_GRACE_S = 2.0


def parse_explanations(line: str) -> tuple[str, ...] | None:
    """The methods of `lungus analyse --list-explanations`'s line
    ``{"model": PATH, "explanations": [...]}``; None for any other line."""
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    if not isinstance(answer, dict) or not isinstance(answer.get("explanations"), list):
        return None
    return tuple(str(method) for method in answer["explanations"])


class ExplanationCheck:
    """The explanation methods of the classifier ``model_path``, found by a `lungus` subprocess:
    :meth:`start`, :meth:`poll` from a timer until it returns False, :meth:`choices` at any time,
    :meth:`cancel` when the path changes. ``python`` and ``launch`` as for EngineProcess.

    ``methods`` is the engine's answer once it has one: () for no path, a missing file or a file
    the engine refuses (not a model), and for segmenters and exported files, which give no maps.
    """

    def __init__(
        self, model_path: str | os.PathLike | None, *, python: str | None = None, launch: Launcher | None = None
    ) -> None:
        self.model_path = "" if model_path is None else str(model_path).strip()
        self.python = python
        self.launch = launch
        self.methods: tuple[str, ...] | None = None
        self.process: EngineProcess | None = None

    def start(self) -> ExplanationCheck:
        """Start the engine on the file; no process for no path or a path that is not a file
        (typing a path in the panel passes through many of those): nothing to explain."""
        if self.process is not None or self.methods is not None:
            raise RuntimeError("this check was already started")
        model = Path(self.model_path).expanduser()
        if not self.model_path or not model.is_file():
            self.methods = ()
            return self
        arguments = ["--model", os.path.abspath(model), "--list-explanations"]
        self.process = EngineProcess(engine_command(self.python, "analyse", arguments), launch=self.launch).start()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def poll(self) -> bool:
        """Read the check's output (never blocks long); True while it runs."""
        if self.process is None:
            return False
        self.process.poll()
        if not self.process.running and self.methods is None:
            self.methods = self._answer()
        return self.running

    def _answer(self) -> tuple[str, ...] | None:
        """What the ended process said: its methods; () when it refused the file; None when it
        could not tell (cancelled, or no PyTorch yet in a fresh Slicer: Analyse installs it)."""
        if self.process.cancelled:
            return None
        if self.process.returncode == REFUSED_STATUS:
            return ()
        if self.process.returncode != 0:
            return None
        for line in reversed(self.process.lines):
            methods = parse_explanations(line)
            if methods is not None:
                return methods
        return None

    def choices(self, current: str = panel.NO_EXPLANATION) -> tuple[tuple[str, str], ...]:
        """The (title, method) pairs to offer: "None" and the supported methods once the engine
        has answered; until then "None", what every model file supports (Grad-CAM) and the
        ``current`` choice, so a choice saved with the scene survives until the answer."""
        if self.methods is not None:
            return panel.explanation_choices(self.methods)
        return panel.explanation_choices((*EVERY_MODEL_EXPLANATIONS, current))

    def cancel(self, *, wait: bool = False) -> None:
        """Stop the check (its path is no longer the panel's); without ``wait``, at once."""
        if self.process is not None:
            self.process.cancel(grace_s=STOP_GRACE_S, wait=wait)

    def wait(self, timeout: float | None = None) -> ExplanationCheck:
        """Block until the check has answered (scripts and tests; the panel polls)."""
        if self.process is not None:
            self.process.wait(timeout)
            self.poll()
        return self
