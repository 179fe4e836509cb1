"""The one shape of a progress callback in lungus: ``progress(done, total, what)``.

``done`` of ``total`` units are finished (analysis steps, clips, epochs over all folds and seeds;
``done`` may be fractional inside a unit) and ``what`` says, for people, what was just done.
Every engine function that reports progress takes this (Analyzer.analyse, run_batch,
write_dataset, fit / fit_seeds / cross_validate), `--progress-lines` prints exactly these three
(lungus.progress_lines.print_progress is one), and the Slicer modules show ``done / total``.
Torch-free: the Slicer bridges import it before PyTorch is installed.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, float, str], None]


def part_progress(progress: Progress, index: int, count: int, label: str) -> Progress:
    """What part ``index`` (0-based) of ``count`` equal parts of a job reports to: its units are
    counted after those of the parts before it, out of all parts' units, and its ``what`` reads
    ``LABEL i/count: what`` (a fold of a cross-validation, a seed of an ensemble)."""

    def report(done: float, total: float, what: str) -> None:
        progress(index * total + done, count * total, f"{label} {index + 1}/{count}: {what}")

    return report
