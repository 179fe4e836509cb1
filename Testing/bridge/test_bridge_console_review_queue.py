"""LungUSInferenceLib.console.review_queue: the review queue from Slicer's Python console."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.review.queue import read_queue_csv  # noqa: E402
from LungUSInferenceLib import console  # noqa: E402


@pytest.fixture(scope="module")
def results(tiny_models, tiny_clip_paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("console_queue") / "results"
    console.run_batch(tiny_clip_paths[:4], tiny_models["classifier"], out, segmenter=tiny_models["segmenter"],
                      device="cpu")
    return out


def test_console_review_queue_returns_the_ranking_and_writes_its_csv(results, tmp_path):
    entries = console.review_queue(results, tmp_path / "queue.csv", top=3)
    assert [e.rank for e in entries] == [1, 2, 3]
    assert {"uncertainty", "classifier_segmenter_disagreement"} <= set(entries[0].reasons)
    assert [e.clip for e in read_queue_csv(tmp_path / "queue.csv")] == [e.clip for e in entries]


def test_console_review_queue_takes_weights_as_a_dict(results):
    entries = console.review_queue([results], weights={"classifier_segmenter_disagreement": 0.0})
    assert all(e.score == pytest.approx(e.reasons["uncertainty"]) for e in entries)
    with pytest.raises(LungUSError, match="weight uncertainty"):
        console.review_queue([results], weights={"uncertainty": -1.0})
