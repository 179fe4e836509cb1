"""The review queue over real `lungus infer` output folders: two classifiers and a segmenter run
over a simulated collection whose manifest has crowd opinions and masks."""

from __future__ import annotations

import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.infer import Analyzer, BatchRequest, run_batch
from lungus.review.queue import SIGNALS, read_queue_csv, review_queue, write_queue_csv


@pytest.fixture(scope="module")
def two_runs(tiny_models, tiny_collection, tmp_path_factory):
    """Two results folders over the 16 clips of tiny_collection: the tiny classifier and another
    one with other weights, each with the tiny segmenter."""
    import torch

    from lungus.infer.recipes import random_model_file

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("two_runs")
    other = random_model_file(folder / "other.pt", "bline2", "frame_cnn", seed=7, size=32, frames=4,
                              model_args={"width": 4}, name="tiny-other")
    runs = []
    for name, classifier in (("first", tiny_models["classifier"]), ("second", other)):
        analyzer = Analyzer(classifier, tiny_models["segmenter"], device="cpu")
        run_batch(analyzer, BatchRequest([tiny_collection], folder / name))
        runs.append(folder / name)
    return runs


def test_every_clip_gets_every_signal_in_zero_one(two_runs, tiny_collection):
    entries = review_queue(two_runs, manifest=tiny_collection)
    manifest = Manifest.load(tiny_collection)
    assert sorted(e.clip for e in entries) == sorted(str(p) for p in manifest.clip_paths())
    for entry in entries:
        assert set(entry.reasons) == set(SIGNALS)
        assert all(0.0 <= value <= 1.0 for value in entry.reasons.values())
        assert entry.patient in manifest.patients
        assert entry.model_label in ("absent", "present")
    assert [e.rank for e in entries] == list(range(1, len(entries) + 1))
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)


def test_the_queue_of_real_results_survives_its_csv(two_runs, tiny_collection, tmp_path):
    entries = review_queue(two_runs, manifest=tiny_collection, top=5)
    back = read_queue_csv(write_queue_csv(entries, tmp_path / "queue.csv"))
    assert [(e.clip, e.rank, e.patient, e.zone) for e in back] == [(e.clip, e.rank, e.patient, e.zone) for e in entries]
