"""Progress lines: how a `lungus` job tells the program that runs it how far it has got.

With ``--progress-lines``, `lungus infer` and `lungus train` print one line on stdout per step:

    progress DONE/TOTAL WHAT

DONE and TOTAL count the command's own units: clips for `lungus infer`; epochs over all folds
and seeds for `lungus train`, where DONE has two decimals inside an epoch. WHAT says, for
people, what was just done. Programs read these lines (Slicer's LungUSInference and LungUSTrain
modules); people keep reading the log lines and, in a terminal, the progress bar.

For people, long steps (evaluation, bootstrap, comparison, validation) show a progress bar on
stderr (:func:`progress_bar`, :func:`track`): tqdm's in a terminal; into a file or a pipe one
plain line per update, at most one per 5 %, instead of a bar redrawn with carriage returns.
Either appears only once a step has run for ``delay`` seconds, so quick steps stay silent.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, TypeVar

PREFIX = "progress"
#: Seconds a step runs before its bar appears (tqdm's ``delay``).
BAR_DELAY_S = 2.0
#: In a file, a new line once the work has gone on by this share of the whole.
FILE_LINE_STEP = 0.05

T = TypeVar("T")
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


class ProgressBar(Protocol):
    """What a step's progress bar offers: tqdm's ``update``, ``set_postfix_str`` and ``close``."""

    def update(self, n: float = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def close(self) -> None: ...


class LineProgress:
    """A progress bar for a file or a pipe: ``WHAT: DONE/TOTAL UNIT (PCT%)`` lines, one per update
    but at most one per :data:`FILE_LINE_STEP` of the total, the first after ``delay`` seconds;
    a closing line says where it stopped."""

    def __init__(self, total: int, desc: str, unit: str, file: TextIO, delay: float) -> None:
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.done = 0.0
        self.postfix = ""
        self._shown_at: float | None = None  # the DONE of the last line written
        self._start = time.monotonic()
        self._delay = delay

    def update(self, n: float = 1) -> None:
        self.done += n
        if time.monotonic() - self._start < self._delay:
            return
        if self._shown_at is None or self.total <= 0 or (self.done - self._shown_at) / self.total >= FILE_LINE_STEP:
            self._write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text for the end of the next line written (e.g. the clip just done)."""
        self.postfix = s

    def close(self) -> None:
        if self._shown_at is not None and self._shown_at != self.done:
            self._write()

    def _write(self) -> None:
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total > 0 else ""
        postfix = f" {self.postfix}" if self.postfix else ""
        self.file.write(f"{self.desc}: {_number(self.done)}/{self.total} {self.unit}{percent}{postfix}\n")
        self.file.flush()
        self._shown_at = self.done


def progress_bar(total: int, desc: str, unit: str = "clip", file: TextIO | None = None,
                 delay: float | None = None) -> ProgressBar:
    """A progress bar on ``file`` (default stderr): tqdm's in a terminal, else :class:`LineProgress`;
    ``delay`` defaults to :data:`BAR_DELAY_S`."""
    file = file if file is not None else sys.stderr
    delay = BAR_DELAY_S if delay is None else delay
    if _is_terminal(file):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=file, leave=False, dynamic_ncols=True, delay=delay)
    return LineProgress(total, desc, unit, file, delay)


def track(items: Iterable[T], desc: str, unit: str = "clip", total: int | None = None,
          file: TextIO | None = None, delay: float | None = None) -> Iterator[T]:
    """``items`` one by one, with a :func:`progress_bar` counting them (``total``: default ``len(items)``)."""
    if total is None:
        total = len(items)  # type: ignore[arg-type]
    bar = progress_bar(total, desc, unit, file, delay)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def _is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # a closed or file-like object without a descriptor
        return False
