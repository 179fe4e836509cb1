"""`lungus evaluate` leaves train-only clips (`lungus merge --train-only`) unscored."""

from __future__ import annotations

import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.model_eval import evaluate_model


def marked(tiny_collection, tmp_path, first_patients: int) -> tuple:
    """A copy of the tiny collection's manifest whose first patients' clips are train-only."""
    manifest = Manifest.load(tiny_collection)
    patients = sorted(set(manifest.patients))[:first_patients]
    manifest.set_column("train_only", ["yes" if p in patients else "" for p in manifest.patients])
    manifest.save(tmp_path / "marked.csv")
    return tmp_path / "marked.csv", {manifest.clip_path(r).name for r in range(len(manifest))
                                     if manifest.patients[r] in patients}


@pytest.mark.parametrize("model", ["classifier", "segmenter"])
def test_train_only_clips_are_not_scored(tiny_models, tiny_collection, tmp_path, model):
    path, train_only = marked(tiny_collection, tmp_path, 2)
    lines = []
    evaluation = evaluate_model(tiny_models[model], path, tmp_path / "eval", device="cpu", n_boot=0,
                                cache_dir=tmp_path / "cache", log=lines.append)
    scored = {prediction["clip"].rsplit("/", 1)[-1] for prediction in evaluation.predictions}
    assert scored and not scored & train_only
    assert len(scored) == len(Manifest.load(path)) - len(train_only)
    assert f"not scored: {len(train_only)} train-only clips (they train every fold's models)" in lines


def test_a_manifest_of_train_only_clips_is_refused(tiny_models, tiny_collection, tmp_path):
    path, _ = marked(tiny_collection, tmp_path, 100)
    with pytest.raises(LungUSError, match="every clip is train-only: nothing to score"):
        evaluate_model(tiny_models["classifier"], path, tmp_path / "eval", device="cpu", n_boot=0, log=print)
