"""A segmenter's clip evidence scored against clip labels (lungus.evaluate.clip_evidence), on
hand-made evidence whose AUC and rho are known, and on hand-written clips.csv tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lungus.data.labels.blines import CLIP_EVIDENCE
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.clip_evidence import (
    ClipEvidence,
    clip_evidence_metrics,
    evaluate_clip_evidence,
    read_infer_evidence,
)


def _patients(n: int) -> list[str]:
    return [f"P{i}" for i in range(n)]


@pytest.mark.parametrize(("direction", "expected"), [(1, 1.0), (-1, 0.0)])
def test_a_statistic_that_orders_the_clips_by_label_has_auc_1_or_0(direction, expected):
    blines = [0, 0, 0, 1, 1, 1]
    metrics = clip_evidence_metrics(_patients(6), {"count": [direction * v for v in range(6)]}, blines, n_boot=0)
    assert metrics["statistics"]["count"]["auc"] == expected


def test_the_auc_is_the_rank_auc_of_the_evidence():
    rng = np.random.default_rng(1)
    blines = rng.integers(0, 2, 50)
    count = rng.poisson(2 + 2 * blines)  # counts: ties aplenty
    metrics = clip_evidence_metrics(_patients(50), {"count": count.tolist()}, blines, n_boot=0)
    assert metrics["statistics"]["count"]["auc"] == pytest.approx(roc_auc_score(blines, count))


def test_spearman_rho_is_1_for_evidence_that_rises_with_severity():
    severity = [0, 1, 1, 2, 3, 3]
    metrics = clip_evidence_metrics(_patients(6), {"count": [0, 2, 2, 5, 9, 9]}, [0, 1, 1, 1, 1, 1], severity,
                                    n_boot=0)
    assert metrics["statistics"]["count"]["spearman"] == pytest.approx(1.0)


def test_means_on_clips_with_and_without_blines_and_by_severity():
    metrics = clip_evidence_metrics(_patients(4), {"count": [7, 8, 8, 9]}, [0, 0, 1, 1], [0, 1, 1, 3], n_boot=0)
    entry = metrics["statistics"]["count"]
    assert (entry["mean_without_blines"], entry["mean_with_blines"]) == (7.5, 8.5)
    assert entry["mean_by_severity"] == {"0": 7.0, "1": 8.0, "3": 9.0}


def test_a_clip_without_a_value_is_left_out_of_that_statistic_only():
    values = {"blas": [None, 10.0, 20.0, 30.0], "count": [0, 1, 2, 3]}
    metrics = clip_evidence_metrics(_patients(4), values, [0, 0, 1, 1], n_boot=0)
    assert metrics["statistics"]["blas"]["n"] == 3 and metrics["statistics"]["count"]["n"] == 4
    assert metrics["statistics"]["blas"]["auc"] == 1.0


def test_a_clip_without_a_bline_label_still_counts_for_severity():
    metrics = clip_evidence_metrics(_patients(4), {"count": [0, 1, 2, 3]}, [0, 1, -1, 1], [0, 1, 2, 3], n_boot=0)
    entry = metrics["statistics"]["count"]
    assert (entry["n"], entry["n_severity"], metrics["n_clips"]) == (3, 4, 4)


def test_one_class_leaves_the_auc_and_its_interval_undefined():
    metrics = clip_evidence_metrics(_patients(4), {"count": [0, 1, 2, 3]}, [1, 1, 1, 1], n_boot=50)
    assert metrics["statistics"]["count"]["auc"] is None and metrics["statistics"]["count"]["auc_ci"] is None


def test_without_severity_labels_there_is_no_rho():
    metrics = clip_evidence_metrics(_patients(4), {"count": [0, 1, 2, 3]}, [0, 0, 1, 1], n_boot=0)
    assert "spearman" not in metrics["statistics"]["count"] and "n_severity" not in metrics


def test_patients_are_the_bootstrap_unit():
    """Four patients of 25 identical clips each: resampling patients can draw both positives with
    the low one and get an AUC of 0 or 1; resampling 100 independent clips hardly moves it."""
    per_patient = {"A": (1, 3.0), "B": (1, 1.0), "C": (0, 2.0), "D": (0, 0.0)}
    patients = [p for p in per_patient for _ in range(25)]
    blines = [per_patient[p][0] for p in patients]
    count = [per_patient[p][1] for p in patients]
    by_patient = clip_evidence_metrics(patients, {"count": count}, blines, n_boot=400)["statistics"]["count"]
    by_clip = clip_evidence_metrics(_patients(100), {"count": count}, blines, n_boot=400)["statistics"]["count"]
    assert by_patient["auc"] == by_clip["auc"] == 0.75
    assert by_patient["auc_ci"][0] <= 0.25 and by_patient["auc_ci"][1] == 1.0
    assert 0.6 < by_clip["auc_ci"][0] and by_clip["auc_ci"][1] < 0.9


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="count: 3 values for 4 clips"):
        clip_evidence_metrics(_patients(4), {"count": [0, 1, 2]}, [0, 0, 1, 1], n_boot=0)


# ------------------------------------------------------------------------ against a manifest


@pytest.fixture
def manifest(tmp_path) -> Manifest:
    """Six real-style clips of three patients: bline2 and the 0-3 severity, no masks."""
    path = tmp_path / "manifest.csv"
    path.write_text("clip,patient,bline2,lus4\n"
                    "clips/a.mp4,P1,absent,0\nclips/b.mp4,P1,present,2\nclips/c.mp4,P2,absent,1\n"
                    "clips/d.mp4,P2,present,3\nclips/e.mp4,P3,present,2\nclips/f.mp4,P3,,\n")
    return Manifest.load(path)


def _evidence(clip: str, count: float, blas: float | None) -> ClipEvidence:
    return ClipEvidence(clip, {"bline_count_max": count, "bline_count_mean": count / 2, "frames_with_blines": count,
                               "blas_max": blas, "blas_mean": blas})


def test_evidence_is_scored_against_the_manifest_labels(manifest, tmp_path):
    evidence = [_evidence(f"clips/{c}.mp4", n, 10.0 * n) for c, n in zip("abcdef", [0, 4, 1, 6, 4, 9])]
    returned, _ = evaluate_clip_evidence(evidence, manifest, tmp_path / "out", labels="bline2", n_boot=20)
    metrics = json.loads((tmp_path / "out" / "clip_evidence.json").read_text())
    assert metrics["n_clips"] == 5 and metrics["severity_labels"] == "lus4"  # f has no label
    assert metrics["statistics"]["bline_count_max"]["auc"] == 1.0
    assert metrics["statistics"]["bline_count_max"]["spearman"] == pytest.approx(1.0)
    assert set(metrics["statistics"]) == set(CLIP_EVIDENCE)
    assert (tmp_path / "out" / "clip_evidence.png").stat().st_size > 0
    assert returned == metrics


def test_the_table_lists_every_scored_clip_with_its_labels(manifest, tmp_path):
    evidence = [_evidence(f"clips/{c}.mp4", n, 1.0) for c, n in zip("abcde", [0, 4, 1, 6, 5])]
    evaluate_clip_evidence(evidence, manifest, tmp_path, labels="bline2", n_boot=0)
    with open(tmp_path / "clip_evidence.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["clip"], r["patient"], r["bline2"], r["lus4"], r["bline_count_max"]) for r in rows[:2]] == [
        ("clips/a.mp4", "P1", "absent", "0", "0"), ("clips/b.mp4", "P1", "present", "2", "4")]


def test_blas_of_masks_without_intercostal_space_scores_as_zero(manifest, tmp_path):
    """No intercostal space means no B-line pixel: such clips rank lowest, not drop out."""
    evidence = [_evidence("clips/a.mp4", 0, None), _evidence("clips/b.mp4", 4, 30.0),
                _evidence("clips/c.mp4", 0, None), _evidence("clips/d.mp4", 6, 50.0)]
    metrics = evaluate_clip_evidence(evidence, manifest, tmp_path, labels="bline2", n_boot=0)[0]
    assert metrics["statistics"]["blas_max"]["n"] == 4 and metrics["statistics"]["blas_max"]["auc"] == 1.0
    assert metrics["blas_zero_without_intercostal_space"] == 2


def test_clips_the_manifest_lacks_are_counted_and_left_out(manifest, tmp_path):
    evidence = [_evidence("clips/a.mp4", 0, 0.0), _evidence("clips/d.mp4", 3, 9.0), _evidence("other/z.mp4", 1, 1.0)]
    metrics = evaluate_clip_evidence(evidence, manifest, tmp_path, labels="bline2", n_boot=0)[0]
    assert metrics["not_in_manifest"] == 1 and metrics["n_clips"] == 2


def test_no_clip_in_the_manifest_is_a_one_line_error(manifest, tmp_path):
    with pytest.raises(LungUSError, match="1 of the 1 clips are not in the manifest") as error:
        evaluate_clip_evidence([_evidence("other/z.mp4", 1, 1.0)], manifest, tmp_path, labels="bline2")
    assert str(manifest.path) in str(error.value) and "\n" not in str(error.value)


def test_one_clip_given_twice_is_refused(manifest, tmp_path):
    twice = [_evidence("clips/a.mp4", 0, 0.0), _evidence(str(manifest.clip_path(0)), 0, 0.0)]
    with pytest.raises(LungUSError, match="are both line 2 of the manifest"):
        evaluate_clip_evidence(twice, manifest, tmp_path, labels="bline2")


# ------------------------------------------------------------------------ infer's clips.csv

HEADER = "clip,n_frames,fps,task,pred,bline_count_max,bline_count_mean,frames_with_blines,blas_max,blas_mean," \
         "top_frame,classifier,segmenter,error\n"


def test_an_infer_table_gives_each_analysed_clip_and_each_failure(tmp_path):
    (tmp_path / "clips.csv").write_text(HEADER + "a.mp4,8,25,,,3,1.5,2,40,20.5,3,,seg:1,\n"
                                        "b.mp4,8,25,,,0,0,0,,,,,seg:1,\n"
                                        "c.mp4,,,,,,,,,,,,,cannot read clip\n")
    found = read_infer_evidence(tmp_path)
    assert [e.clip for e in found.evidence] == ["a.mp4", "b.mp4"]
    assert found.evidence[0].values == {"bline_count_max": 3.0, "bline_count_mean": 1.5, "frames_with_blines": 2.0,
                                        "blas_max": 40.0, "blas_mean": 20.5}
    assert found.evidence[1].values["blas_max"] is None
    assert found.failed == [("c.mp4", "cannot read clip")] and found.segmenter == "seg:1"


@pytest.mark.parametrize(("table", "message"), [
    (None, "no clips.csv here"),
    ("clip,p_present\na.mp4,0.3\n", "not a `lungus infer` clips.csv: no column bline_count_max"),
    (HEADER + "a.mp4,8,25,bline2,present,,,,,,,cls:1,,\n", "no clip here has segmenter evidence"),
    (HEADER + "a.mp4,8,25,,,three,1,1,,,,,seg:1,\n", "line 2: column bline_count_max: 'three' is not a number"),
])
def test_a_table_without_usable_evidence_is_a_one_line_error(tmp_path, table, message):
    if table is not None:
        (tmp_path / "clips.csv").write_text(table)
    with pytest.raises(LungUSError, match=message) as error:
        read_infer_evidence(tmp_path)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)
