"""lungus.progress_lines: the one format `lungus infer` and `lungus train` report progress in."""

from __future__ import annotations

import pytest

from lungus.progress_lines import (
    FILE_LINE_STEP,
    LineProgress,
    ProgressLine,
    print_progress,
    progress_bar,
    track,
)


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


# ----------------------------------------------------------------------------- progress bars for people


def test_a_bar_into_a_file_writes_lines_not_carriage_returns(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as handle:
        assert list(track(range(200), "evaluate", file=handle, delay=0)) == list(range(200))
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "evaluate: 1/200 clip (0%)" and lines[-1] == "evaluate: 200/200 clip (100%)"
    assert len(lines) <= 1 + 1 / FILE_LINE_STEP + 1  # at most one line per 5 %


def test_a_short_bar_writes_a_line_per_update(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as handle:
        list(track(["a", "b", "c"], "validate", file=handle, delay=0))
    assert log.read_text().splitlines() == [f"validate: {k}/3 clip ({100 * k / 3:.0f}%)" for k in (1, 2, 3)]


def test_a_quick_step_stays_silent(tmp_path):
    log = tmp_path / "stderr.log"
    with open(log, "w") as handle:
        list(track(range(50), "evaluate", file=handle, delay=60))
    assert log.read_text() == ""


def test_a_terminal_gets_tqdm_and_a_file_gets_lines(tmp_path):
    import os

    from tqdm import tqdm

    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal, open(tmp_path / "log", "w") as handle:
        bar = progress_bar(10, "evaluate", file=terminal)
        assert isinstance(bar, tqdm)
        bar.close()
        assert isinstance(progress_bar(10, "evaluate", file=handle), LineProgress)
    os.close(leader)


def test_bootstrap_replicates_show_progress_on_redirected_stderr(capfd, monkeypatch):
    import lungus.progress_lines
    from lungus.evaluate.bootstrap import patient_bootstrap_indices

    monkeypatch.setattr(lungus.progress_lines, "BAR_DELAY_S", 0.0)
    replicates = list(patient_bootstrap_indices(["p1", "p1", "p2", "p3"], 40, seed=0))
    assert len(replicates) == 40
    err = capfd.readouterr().err
    assert "\r" not in err
    assert err.splitlines()[-1] == "bootstrap: 40/40 replicate (100%)"
