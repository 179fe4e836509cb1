"""LungUSInferenceLib.batch.make_review_queue: a run's review queue written beside its clips.csv
and shown as a table node (the Inference panel's Make review queue)."""

from __future__ import annotations

import pytest

pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.review.queue import read_queue_csv  # noqa: E402
from LungUSBLinesLib.tables import table_records  # noqa: E402
from LungUSInferenceLib import batch, console  # noqa: E402


@pytest.fixture(scope="module")
def results(tiny_models, tiny_clip_paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("inference_queue") / "results"
    console.run_batch(
        tiny_clip_paths[:3], tiny_models["classifier"], out, segmenter=tiny_models["segmenter"], device="cpu"
    )
    return out


def test_the_queue_is_written_beside_clips_csv_and_shown_as_a_table(headless, results):
    made = batch.make_review_queue(headless.scene, results)
    assert made.queue_csv == (results / batch.REVIEW_QUEUE_CSV).resolve() and made.n_clips == 3
    rows = table_records(made.table)
    assert [row["clip"] for row in rows] == [entry.clip for entry in read_queue_csv(made.queue_csv)]
    assert [int(row["rank"]) for row in rows] == [1, 2, 3]
    assert "3 clips ranked" in made.describe()


def test_making_it_again_refreshes_the_same_table(headless, results):
    first = batch.make_review_queue(headless.scene, results)
    again = batch.make_review_queue(headless.scene, results)
    assert again.table.GetID() == first.table.GetID()


def test_no_queue_without_a_run(headless, tmp_path):
    with pytest.raises(LungUSError, match="no clips.csv here"):
        batch.make_review_queue(headless.scene, tmp_path)
