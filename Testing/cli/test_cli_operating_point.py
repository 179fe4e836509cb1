"""End to end: `lungus infer` and `lungus evaluate` decide at the card's threshold; evaluate also
reports the decision at P = 0.5; the Slicer panel says where the cut is."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest
from lungus.models.model_file import update_card
from lungus.operating_point import OperatingPoint
from LungUSBLinesLib.results import describe_analysis

torch.set_num_threads(1)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _infer(model, tiny_collection, out):
    folder = Manifest.load(tiny_collection).folder / "clips"
    assert main(["infer", str(folder), "--model", str(model), "--out", str(out), "--device", "cpu",
                 "--runtime", "torch", "--quiet"]) == 0
    return _rows(out / "clips.csv")


@pytest.fixture(scope="module")
def thresholded(tiny_models, tiny_collection, tmp_path_factory):
    """The tiny classifier with a threshold at the median of its scores on the tiny clips."""
    folder = tmp_path_factory.mktemp("operating_point")
    model = shutil.copy(tiny_models["classifier"], folder / "model.pt")
    scores = [float(r["p_present"]) for r in _infer(model, tiny_collection, folder / "before")]
    threshold = float(np.median(scores))
    update_card(model, operating_point=OperatingPoint(threshold=threshold, rule="fixed:median").to_card_field())
    return model, threshold


def test_infer_decides_at_the_cards_threshold(thresholded, tiny_collection, tmp_path):
    model, threshold = thresholded
    rows = _infer(model, tiny_collection, tmp_path / "out")
    called = [float(r["p_present"]) >= threshold for r in rows]
    assert [r["pred"] == "present" for r in rows] == called
    assert 0 < sum(called) < len(rows)
    record = json.loads((tmp_path / "out" / "clips.jsonl").read_text().splitlines()[0])
    assert record["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert f"B-lines at P >= {threshold:.2g}" in describe_analysis(record)


def test_evaluate_scores_at_the_cards_threshold_and_at_one_half(thresholded, tiny_collection, tmp_path):
    model, threshold = thresholded
    out = tmp_path / "evaluation"
    assert main(["evaluate", "--model", str(model), "--manifest", str(tiny_collection), "--out", str(out),
                 "--n-boot", "20", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = _rows(out / "predictions.csv")
    score = np.array([float(r["p_present"]) for r in rows])
    truth = np.array([r["label"] == "present" for r in rows])
    assert [r["pred"] == "present" for r in rows] == (score >= threshold).tolist()
    assert metrics["sensitivity"] == pytest.approx((score >= threshold)[truth].mean())
    assert metrics["at_0.5"]["sensitivity"] == pytest.approx((score >= 0.5)[truth].mean())
    assert metrics["operating_point"].startswith(f"threshold {threshold:.3g} on P(B-lines)")
