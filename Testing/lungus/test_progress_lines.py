"""lungus.progress_lines: the one format `lungus infer` and `lungus train` report progress in."""

from __future__ import annotations

import pytest

from lungus.progress_lines import ProgressLine, print_progress


def test_a_line_reads_back_as_written(capsys):
    print_progress(3, 20, "/data/clips/zone 2.mp4")
    print_progress(12.5, 40, "fold 2/4: epoch 3/5: batch 4/8")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["progress 3/20 /data/clips/zone 2.mp4", "progress 12.5/40 fold 2/4: epoch 3/5: batch 4/8"]
    assert ProgressLine.parse(lines[0]) == ProgressLine(3, 20, "/data/clips/zone 2.mp4")
    assert ProgressLine.parse(lines[1]).fraction == pytest.approx(12.5 / 40)


@pytest.mark.parametrize(
    "line", ["epoch 2/30  loss 0.8048  0.2s", "progress of the run", "progress 1/x a.mp4", "  progressing 1/2"]
)
def test_other_lines_are_not_progress(line):
    assert ProgressLine.parse(line) is None


def test_nothing_to_do_is_done():
    assert ProgressLine(0, 0).fraction == 1.0 and str(ProgressLine(0, 0)) == "progress 0/0"
