"""`lungus review-queue`: `lungus infer` output in, a queue CSV out; bad input is one line and exit 2."""

from __future__ import annotations

import pytest

from lungus.cli import main
from lungus.review.queue import QUEUE_COLUMNS, read_queue_csv


@pytest.fixture(scope="module")
def results(tiny_models, tiny_collection, tmp_path_factory):
    """`lungus infer` over the tiny collection's manifest with the tiny classifier and segmenter."""
    out = tmp_path_factory.mktemp("review_queue") / "results"
    code = main(["infer", str(tiny_collection), "--model", str(tiny_models["classifier"]),
                 "--segmenter", str(tiny_models["segmenter"]), "--out", str(out), "--device", "cpu"])
    assert code == 0
    return out


def test_review_queue_writes_the_top_clips_with_their_reasons(results, tiny_collection, tmp_path, capsys):
    code = main(["review-queue", str(results), "--manifest", str(tiny_collection), "--top", "5",
                 "--out", str(tmp_path / "queue.csv")])
    assert code == 0
    header = (tmp_path / "queue.csv").read_text().splitlines()[0]
    assert header == ",".join(QUEUE_COLUMNS)
    entries = read_queue_csv(tmp_path / "queue.csv")
    assert [e.rank for e in entries] == [1, 2, 3, 4, 5]
    assert all("crowd_model_disagreement" in e.reasons and e.patient for e in entries)
    assert "wrote 5 clips" in capsys.readouterr().out


def test_weights_change_the_order(results, tmp_path):
    for name, weight in (("by_uncertainty", "uncertainty"), ("by_segmenter", "classifier_segmenter_disagreement")):
        others = [f"--weight={signal}=0" for signal in ("uncertainty", "classifier_segmenter_disagreement")
                  if signal != weight]
        assert main(["review-queue", str(results), *others, "--out", str(tmp_path / f"{name}.csv")]) == 0
    first = read_queue_csv(tmp_path / "by_uncertainty.csv")
    second = read_queue_csv(tmp_path / "by_segmenter.csv")
    assert [e.score for e in first] == pytest.approx([e.reasons["uncertainty"] for e in first])
    assert [e.score for e in second] == pytest.approx([e.reasons["classifier_segmenter_disagreement"] for e in second])


@pytest.mark.parametrize("extra, problem", [
    (["--weight", "loudness=1"], "--weight 'loudness=1'"),
    (["--top", "0"], "top must be at least 1"),
    (["--threshold", "2"], "threshold must be in (0, 1)"),
])
def test_bad_options_are_one_line_and_exit_2(results, tmp_path, capsys, extra, problem):
    assert main(["review-queue", str(results), "--out", str(tmp_path / "q.csv"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and problem in error and "Traceback" not in error
    assert not (tmp_path / "q.csv").exists()


def test_a_folder_that_is_no_results_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    assert main(["review-queue", str(tmp_path / "clips"), "--out", str(tmp_path / "q.csv")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("lungus review-queue: error: ") and "not a lungus infer output folder" in error
    assert error.count("\n") == 1
