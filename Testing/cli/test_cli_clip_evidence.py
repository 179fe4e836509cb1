"""End to end: `lungus evaluate` of a segmenter by its clip-level B-line evidence against clip
labels, on clips without masks, run through the model or read back from `lungus infer`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lungus.cli import main
from lungus.data.labels.blines import CLIP_EVIDENCE
from lungus.data.manifests.manifest import Manifest

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def segmenter(tiny_collection, tmp_path_factory) -> Path:
    """A 4-channel U-Net trained for 40 short epochs on the tiny collection: enough to find
    B-lines on some clips and not on others (an untrained one finds none anywhere)."""
    run = tmp_path_factory.mktemp("segmenter") / "run"
    assert main(["train", "--manifest", str(tiny_collection), "--out", str(run), "--task", "seg",
                 "--model", "unet_small", "--model-arg", "width=4", "--model-arg", "levels=3", "--size", "32",
                 "--frames", "4", "--epochs", "40", "--batch-size", "8", "--threads", "1", "--seed", "1",
                 "--val-fraction", "0", "--device", "cpu"]) == 0
    return run / "model.pt"


@pytest.fixture(scope="module")
def real_style(tiny_collection, tmp_path_factory) -> Path:
    """The tiny collection as real clips come: absolute clip paths, clip labels in bline2 and
    lus4, and no masks."""
    manifest = Manifest.load(tiny_collection)
    path = tmp_path_factory.mktemp("real_style") / "manifest.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "patient", "bline2", "lus4"])
        for i, row in enumerate(manifest.rows):
            writer.writerow([manifest.clip_path(i), row["patient"], row["truth_bline2"], row["truth_lus4"]])
    return path


@pytest.fixture(scope="module")
def evaluated(segmenter, real_style, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evidence") / "out"
    assert main(["evaluate", "--model", str(segmenter), "--manifest", str(real_style), "--out", str(out),
                 "--n-boot", "50", "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def inferred(segmenter, real_style, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("infer") / "run"
    assert main(["infer", str(real_style), "--segmenter", str(segmenter), "--out", str(out), "--device", "cpu"]) == 0
    return out


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_segmenter_on_clips_without_masks_is_scored_by_its_clip_evidence(evaluated):
    metrics = json.loads((evaluated / "clip_evidence.json").read_text())
    assert (metrics["labels"], metrics["severity_labels"]) == ("bline2", "lus4")
    assert (metrics["n_clips"], metrics["n_patients"]) == (16, 8)
    counts = metrics["statistics"]["bline_count_max"]
    for key in ("auc", "auc_ci", "spearman", "spearman_ci", "mean_with_blines", "mean_without_blines"):
        assert counts[key] is not None
    assert len(_table(evaluated / "clip_evidence.csv")) == 16
    assert (evaluated / "clip_evidence.png").stat().st_size > 0
    assert not (evaluated / "metrics.json").exists()


def test_an_infer_run_scores_as_running_the_segmenter_does(evaluated, inferred, real_style, tmp_path, capsys):
    assert main(["evaluate", "--from-infer", str(inferred), "--manifest", str(real_style), "--out", str(tmp_path),
                 "--n-boot", "50"]) == 0
    assert "bline_count_max: AUC" in capsys.readouterr().out
    again, first = (_table(d / "clip_evidence.csv") for d in (tmp_path, evaluated))
    assert [(r["clip"], r["bline2"], r["lus4"]) for r in again] == [(r["clip"], r["bline2"], r["lus4"]) for r in first]
    for name in CLIP_EVIDENCE:  # clips.csv rounds mean counts to 3 decimals, BLAS to 2
        assert [float(r[name]) for r in again] == pytest.approx([float(r[name]) for r in first], abs=0.005)
    again, first = (json.loads((d / "clip_evidence.json").read_text()) for d in (tmp_path, evaluated))
    assert [again["statistics"][name]["auc"] for name in CLIP_EVIDENCE] == \
        pytest.approx([first["statistics"][name]["auc"] for name in CLIP_EVIDENCE])


def test_clip_evidence_on_a_manifest_with_masks(segmenter, tiny_collection, tmp_path):
    assert main(["evaluate", "--model", str(segmenter), "--manifest", str(tiny_collection), "--out", str(tmp_path),
                 "--clip-evidence", "--n-boot", "0", "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "clip_evidence.json").read_text())
    assert (metrics["labels"], metrics["severity_labels"]) == ("truth", "truth")


def test_clips_infer_could_not_read_are_listed_and_exit_1(inferred, real_style, tmp_path, capsys):
    rows = _table(inferred / "clips.csv")
    rows.append({**{key: "" for key in rows[0]}, "clip": "/nowhere/broken.mp4", "error": "cannot read clip"})
    with open(tmp_path / "clips.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["evaluate", "--from-infer", str(tmp_path / "clips.csv"), "--manifest", str(real_style),
                 "--out", str(tmp_path / "out"), "--n-boot", "0"]) == 1
    assert "1 clip(s) could not be read and were skipped (listed in clip_evidence.json)" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "clip_evidence.json").read_text())
    assert metrics["skipped"] == [{"clip": "/nowhere/broken.mp4", "error": "cannot read clip"}]


def _error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("lungus evaluate: error: ") and "\n" not in error
    return error


def test_clip_evidence_of_a_classifier_exits_2(tiny_models, real_style, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tiny_models["classifier"]), "--manifest", str(real_style),
                 "--out", str(tmp_path), "--clip-evidence", "--device", "cpu"]) == 2
    assert "--clip-evidence scores a segmenter's masks; this is a bline2 classifier" in _error(capsys)


def test_clip_evidence_without_a_model_exits_2(real_style, tmp_path, capsys):
    assert main(["evaluate", "--predictions", str(tmp_path), "--manifest", str(real_style), "--out", str(tmp_path),
                 "--clip-evidence"]) == 2
    assert "--clip-evidence runs a segmenter: give it with --model" in _error(capsys)


def test_a_folder_without_clips_csv_exits_2(real_style, tmp_path, capsys):
    assert main(["evaluate", "--from-infer", str(tmp_path), "--manifest", str(real_style),
                 "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path}: no clips.csv here" in _error(capsys)


def test_an_infer_run_without_a_segmenter_exits_2(tiny_models, real_style, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["infer", str(real_style), "--model", str(tiny_models["classifier"]), "--out", str(run),
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--from-infer", str(run), "--manifest", str(real_style),
                 "--out", str(tmp_path / "out")]) == 2
    assert "no clip here has segmenter evidence (run `lungus infer --segmenter SEG.pt`)" in _error(capsys)


def test_labels_the_manifest_lacks_exit_2_before_any_clip_is_read(segmenter, real_style, tmp_path, capsys):
    assert main(["evaluate", "--model", str(segmenter), "--manifest", str(real_style), "--out", str(tmp_path / "out"),
                 "--labels", "expert:nobody", "--device", "cpu"]) == 2
    assert "no column expert_nobody" in _error(capsys)
    assert not (tmp_path / "out").exists()
