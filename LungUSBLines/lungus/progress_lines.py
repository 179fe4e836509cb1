"""Progress lines: how a `lungus` job tells the program that runs it how far it has got.

With ``--progress-lines``, `lungus infer` and `lungus train` print one line on stdout per step:

    progress DONE/TOTAL WHAT

DONE and TOTAL count the command's own units: clips for `lungus infer`; epochs over all folds
and seeds for `lungus train`, where DONE has two decimals inside an epoch. WHAT says, for
people, what was just done. Programs read these lines (Slicer's LungUSInference and LungUSTrain
modules); people keep reading the log lines and, in a terminal, the progress bar.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

PREFIX = "progress"
_LINE = re.compile(rf"^{PREFIX} (\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)(?: (.*))?$")


@dataclass(frozen=True)
class ProgressLine:
    done: float
    total: float
    what: str = ""

    @property
    def fraction(self) -> float:
        """``done / total`` in [0, 1] (1 when there is nothing to do)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0

    def __str__(self) -> str:
        return f"{PREFIX} {_number(self.done)}/{_number(self.total)} {self.what}".rstrip()

    @classmethod
    def parse(cls, line: str) -> ProgressLine | None:
        """The ProgressLine a line of output holds, or None for any other line."""
        match = _LINE.match(line.strip())
        if match is None:
            return None
        return cls(float(match.group(1)), float(match.group(2)), match.group(3) or "")


def add_progress_lines_argument(parser: argparse.ArgumentParser, counted: str) -> None:
    """The ``--progress-lines`` option of a command; ``counted`` says what DONE/TOTAL count."""
    parser.add_argument(
        "--progress-lines",
        dest="progress_lines",
        action="store_true",
        help=f"print '{PREFIX} DONE/TOTAL WHAT' on stdout as the work goes on, {counted} (for programs "
        "that run lungus and show its progress, such as the Slicer modules; see lungus.progress_lines)",
    )


def print_progress(done: float, total: float, what: str) -> None:
    """Print a progress line at once (the reader shows it while the job goes on)."""
    print(ProgressLine(done, total, what), flush=True)


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
