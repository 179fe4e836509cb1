import csv
import json

import numpy as np
import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.operating_points import choose_threshold
from lungus.models.model_file import load_model_file
from lungus.train.config import TrainConfig
from lungus.train.cv import CV_METRICS, cross_validate, fold_assignment

FOLDS = 3


def _config(manifest, out, **settings):
    return TrainConfig(manifest=str(manifest), out=str(out), model_args={"width": 4}, size=(32, 32), frames=4,
                       epochs=2, batch_size=4, threads=1, folds=FOLDS, val_fraction=0, seed=2, **settings)


@pytest.fixture(scope="module")
def cv_run(tiny_collection, tmp_path_factory):
    config = _config(tiny_collection, tmp_path_factory.mktemp("cv") / "run")
    return config, cross_validate(config, log=lambda _m: None)


def _pooled_rows(run_dir):
    with open(run_dir / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_clip_is_scored_once_by_the_fold_that_held_out_its_patient(tiny_collection, cv_run):
    config, result = cv_run
    manifest = Manifest.load(tiny_collection)
    assigned = fold_assignment(manifest, config)
    fold_of_clip = {str(path): fold for path, fold in zip(manifest.clip_paths(), assigned)}
    rows = _pooled_rows(result.run_dir)
    assert len(rows) == len(manifest) == len({row["clip"] for row in rows})
    for row in rows:
        matches = [fold for clip, fold in fold_of_clip.items() if clip.endswith(row["clip"])]
        assert matches == [int(row["fold"])], row["clip"]


def test_a_patient_never_spans_two_folds(tiny_collection, cv_run):
    config, _ = cv_run
    manifest = Manifest.load(tiny_collection)
    folds_of_patient: dict[str, set[int]] = {}
    for patient, fold in zip(manifest.patients, fold_assignment(manifest, config)):
        folds_of_patient.setdefault(patient, set()).add(fold)
    assert all(len(folds) == 1 for folds in folds_of_patient.values())
    assert set().union(*folds_of_patient.values()) == set(range(FOLDS))


def test_each_fold_model_trained_on_the_other_folds_only(cv_run):
    _, result = cv_run
    held_out = [sum(1 for p in result.predictions if p["fold"] == k) for k in range(FOLDS)]
    total = sum(held_out)
    for k in range(FOLDS):
        card = load_model_file(result.run_dir / f"fold{k}" / "model.pt").card
        assert card.training_data["clips"] == total - held_out[k]


def test_cv_metrics_pool_the_folds_with_intervals(cv_run):
    _, result = cv_run
    saved = json.loads((result.run_dir / CV_METRICS).read_text())
    assert len(saved["fold_auc"]) == len(saved["folds"]) == FOLDS
    assert saved["n_clips"] == len(result.predictions)
    assert saved["auc_ci"][0] <= saved["auc"] <= saved["auc_ci"][1]
    assert saved["mean_fold_auc"] == pytest.approx(sum(saved["fold_auc"]) / FOLDS)
    assert (result.run_dir / "roc.png").is_file()


def test_resume_reuses_finished_folds(tiny_collection, cv_run):
    config, result = cv_run
    messages: list[str] = []
    again = cross_validate(config, resume=True, log=messages.append)
    assert sum("already done" in m for m in messages) == FOLDS
    assert again.metrics["auc"] == result.metrics["auc"]


def test_segmenters_are_not_cross_validated(tiny_collection, tmp_path):
    with pytest.raises(LungUSError, match="cross-validation is for clip classifiers"):
        cross_validate(_config(tiny_collection, tmp_path / "seg", task="seg"), log=lambda _m: None)


def test_the_fold_models_become_one_ensemble_for_new_clips(cv_run):
    import torch

    _, result = cv_run
    ensemble = load_model_file(result.run_dir / "model.pt")
    assert ensemble.card.architecture["name"] == "ensemble"
    assert ensemble.card.validation_metrics["cv_auc"] == result.metrics["auc"]
    folds = [load_model_file(result.run_dir / f"fold{k}" / "model.pt").model for k in range(FOLDS)]
    x = torch.randn(2, 1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = torch.stack([m(x).softmax(dim=1) for m in folds]).mean(dim=0)
        torch.testing.assert_close(ensemble.model(x).softmax(dim=1), expected)


def _scores_by_fold(result):
    rows = _pooled_rows(result.run_dir)
    fold = np.array([int(r["fold"]) for r in rows])
    y = np.array([r["label"] == "present" for r in rows])
    score = np.array([float(r["p_present"]) for r in rows])
    return rows, fold, y, score


def test_each_fold_model_thresholds_on_the_other_folds_predictions(cv_run):
    _, result = cv_run
    _, fold, y, score = _scores_by_fold(result)
    for k in range(FOLDS):
        point = load_model_file(result.run_dir / f"fold{k}" / "model.pt").card.decision
        assert point.chosen_on.startswith(f"out-of-fold predictions of the other {FOLDS - 1} folds")
        assert point.threshold == pytest.approx(choose_threshold(y[fold != k], score[fold != k], "youden"))


def test_pooled_decisions_are_each_fold_models_and_also_reported_at_one_half(cv_run):
    _, result = cv_run
    rows, fold, y, score = _scores_by_fold(result)
    thresholds = [load_model_file(result.run_dir / f"fold{k}" / "model.pt").card.decision.threshold
                  for k in range(FOLDS)]
    called = score >= np.array(thresholds)[fold]
    assert [r["pred"] == "present" for r in rows] == called.tolist()
    saved = json.loads((result.run_dir / CV_METRICS).read_text())
    assert saved["sensitivity"] == pytest.approx(called[y].mean())
    assert saved["at_0.5"]["sensitivity"] == pytest.approx((score >= 0.5)[y].mean())
    assert saved["at_0.5"]["specificity_ci"] is not None


def test_the_fold_ensemble_thresholds_on_all_out_of_fold_predictions(cv_run):
    _, result = cv_run
    _, _, y, score = _scores_by_fold(result)
    point = load_model_file(result.run_dir / "model.pt").card.decision
    assert point.chosen_on.startswith(f"out-of-fold predictions of its {FOLDS} fold models")
    assert point.threshold == pytest.approx(choose_threshold(y, score, "youden"))
