"""`lungus review-study`: bad settings and a folder in use are one line and exit 2, before any work
(the study itself runs, tiny, in Testing/lungus/studies/test_review_loop.py)."""

from __future__ import annotations

import pytest

from lungus.cli import main


@pytest.mark.parametrize("extra, problem", [
    (["--folds", "1"], "folds must be at least 2"),
    (["--review-share", "0"], "review_share must be in (0, 1)"),
    (["--clips", "0"], "clips must be at least 1"),
])
def test_bad_settings_are_one_line_and_exit_2(tmp_path, capsys, extra, problem):
    assert main(["review-study", "--out", str(tmp_path / "study"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.startswith("lungus review-study: error: review study: ") and problem in error
    assert error.count("\n") == 1
    assert not (tmp_path / "study").exists()


def test_a_folder_with_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "notes.txt").write_text("mine\n")
    assert main(["review-study", "--out", str(tmp_path / "study")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "study").iterdir()] == ["notes.txt"]
