"""End to end: `lungus compare` scores two models on one manifest, or reads their prediction tables."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.metrics import roc_auc_score

from lungus.cli import main
from lungus.evaluate.report import read_predictions
from lungus.infer.recipes import random_model_file

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def two_classifiers(tiny_models, tmp_path_factory):
    other = random_model_file(tmp_path_factory.mktemp("other") / "other.pt", "bline2", "frame_cnn", seed=7,
                              size=32, frames=4, eval_stride=2, model_args={"width": 4}, name="tiny-other")
    return tiny_models["classifier"], other


@pytest.fixture(scope="module")
def compared(two_classifiers, tiny_collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    a, b = two_classifiers
    code = main(["compare", str(a), str(b), "--manifest", str(tiny_collection), "--out", str(out),
                 "--n-boot", "200", "--device", "cpu"])
    assert code == 0
    return out, json.loads((out / "comparison.json").read_text())


def _auc(folder):
    rows = read_predictions(folder / "predictions.csv", ["absent", "present"])
    return roc_auc_score([r["target"][1] for r in rows], [r["probabilities"][1] for r in rows])


def test_the_difference_is_that_of_the_two_evaluations(compared):
    out, result = compared
    assert result["auc_a"] == pytest.approx(_auc(out / "a"))
    assert result["auc_b"] == pytest.approx(_auc(out / "b"))
    assert result["auc_diff"] == pytest.approx(result["auc_a"] - result["auc_b"])
    low, high = result["auc_diff_ci"]
    assert low <= result["auc_diff"] <= high
    assert 0 < result["p_value"] <= 1
    assert (out / "roc_compare.png").is_file()


def test_prediction_tables_compare_without_a_manifest(compared, tmp_path, capsys):
    out, first = compared
    assert main(["compare", str(out / "a"), str(out / "b"), "--out", str(tmp_path), "--n-boot", "200",
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["auc_a"] == pytest.approx(first["auc_a"])
    assert again["auc_b"] == pytest.approx(first["auc_b"])


def test_a_model_against_itself_is_no_difference(compared, tmp_path, capsys):
    out, _ = compared
    assert main(["compare", str(out / "a"), str(out / "a"), "--out", str(tmp_path), "--n-boot", "200"]) == 0
    printed = capsys.readouterr().out
    assert "difference +0.000" in printed and "p = 1" in printed


def test_a_folder_without_model_or_predictions_is_a_one_line_error(compared, tmp_path, capsys):
    out, _ = compared
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(out / "a"), str(empty), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert str(empty) in error and "no predictions.csv here" in error and "\n" not in error


def test_models_of_different_tasks_are_refused(two_classifiers, tiny_models, tiny_collection, tmp_path, capsys):
    code = main(["compare", str(two_classifiers[0]), str(tiny_models["bline3"]), "--manifest",
                 str(tiny_collection), "--out", str(tmp_path), "--device", "cpu"])
    assert code == 2
    assert "predict different classes" in capsys.readouterr().err


def test_the_figure_and_the_line_name_the_runs(compared, tmp_path, capsys):
    out, result = compared
    assert (result["name_a"], result["name_b"]) == ("tiny-cls", "tiny-other")  # the model cards' names
    assert main(["compare", str(out / "a"), str(out / "b"), "--out", str(tmp_path), "--n-boot", "50",
                 "--names", "crowd-trained", "expert-trained"]) == 0
    assert "AUC A (crowd-trained) " in capsys.readouterr().out
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert (saved["name_a"], saved["name_b"]) == ("crowd-trained", "expert-trained")
