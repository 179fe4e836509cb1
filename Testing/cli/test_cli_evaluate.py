"""End to end: `lungus evaluate` of a model file by subgroup, and of a predictions table without its model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def evaluated(tiny_models, tiny_collection, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "out"
    code = main(["evaluate", "--model", str(tiny_models["classifier"]), "--manifest", str(tiny_collection),
                 "--out", str(out), "--by", "zone", "--by", "truth_lus4", "--n-boot", "50", "--device", "cpu"])
    assert code == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_metrics_are_broken_down_by_each_column(evaluated, tiny_collection):
    out, metrics = evaluated
    zones = sorted(set(Manifest.load(tiny_collection).column("zone")))
    assert [row["value"] for row in metrics["by"]["zone"]] == zones
    assert sum(row["n_clips"] for row in metrics["by"]["zone"]) == metrics["n_clips"]
    assert set(metrics["by"]) == {"zone", "truth_lus4"}
    for name in ("by_zone.csv", "by_zone.png", "by_truth_lus4.csv", "by_truth_lus4.png"):
        assert (out / name).stat().st_size > 0


def test_a_predictions_table_rescores_to_the_same_metrics(evaluated, tiny_collection, tmp_path, capsys):
    out, first = evaluated
    assert main(["evaluate", "--predictions", str(out / "predictions.csv"), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path), "--by", "zone", "--n-boot", "50"]) == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert again["auc"] == pytest.approx(first["auc"])
    assert again["n_clips"] == first["n_clips"]
    assert again["by"]["zone"][0]["auc_positives_vs_all_negatives"] == \
        pytest.approx(first["by"]["zone"][0]["auc_positives_vs_all_negatives"])
    assert "by zone: " in capsys.readouterr().out


def test_a_predictions_table_rescores_against_other_labels(evaluated, tiny_collection, tmp_path):
    out, _ = evaluated
    assert main(["evaluate", "--predictions", str(out), "--manifest", str(tiny_collection), "--out", str(tmp_path),
                 "--labels", "expert:noisy", "--n-boot", "0"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    manifest = Manifest.load(tiny_collection)
    noisy = {clip: int(value != "none") for clip, value in zip(manifest.clips, manifest.column("expert_noisy"))}
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    y = np.array([noisy[r["clip"]] for r in rows])
    assert metrics["labels"] == "expert:noisy"
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, [float(r["p_present"]) for r in rows]))


@pytest.mark.parametrize("by", ["site", ""])
def test_an_unknown_column_exits_2_before_scoring(tiny_models, tiny_collection, tmp_path, capsys, by):
    code = main(["evaluate", "--model", str(tiny_models["classifier"]), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "out"), "--by", by, "--device", "cpu"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert str(tiny_collection) in error and f"no column '{by}'" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_no_predictions_table_exits_2(tiny_collection, tmp_path, capsys):
    assert main(["evaluate", "--predictions", str(tiny_collection), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "not a predictions table" in error and str(tiny_collection) in error and "\n" not in error


def test_a_segmenter_is_not_broken_down_by_clip_columns(tiny_models, tiny_collection, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tiny_models["segmenter"]), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path), "--by", "zone", "--device", "cpu"]) == 2
    assert "--by breaks down clip-classifier metrics" in capsys.readouterr().err


def test_the_table_is_never_overwritten_by_its_own_scoring(evaluated, tiny_collection, capsys):
    out, _ = evaluated
    before = (out / "predictions.csv").read_bytes()
    assert main(["evaluate", "--predictions", str(out / "predictions.csv"), "--manifest", str(tiny_collection),
                 "--out", str(out), "--labels", "expert:noisy"]) == 2
    assert "would be overwritten" in capsys.readouterr().err
    assert (out / "predictions.csv").read_bytes() == before


def test_progress_into_a_file_is_lines_per_clip_and_replicate(tiny_models, tiny_collection, tmp_path, capfd,
                                                              monkeypatch):
    import lungus.progress_lines

    monkeypatch.setattr(lungus.progress_lines, "BAR_DELAY_S", 0.0)  # the tiny run is quicker than the delay
    assert main(["evaluate", "--model", str(tiny_models["classifier"]), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "out"), "--n-boot", "40", "--device", "cpu"]) == 0
    err = capfd.readouterr().err  # stderr is a file here, not a terminal
    n_clips = len(Manifest.load(tiny_collection))
    assert "\r" not in err
    assert f"evaluate: {n_clips}/{n_clips} clip (100%)" in err.splitlines()
    assert "bootstrap: 40/40 replicate (100%)" in err.splitlines()
