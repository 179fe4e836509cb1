import csv

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.subgroups import BLANK, manifest_rows, prediction_rows, subgroup_metrics, write_subgroups

CLASSES = ("absent", "present")


@pytest.fixture()
def scored():
    """40 clips of 20 patients in groups a/b: the model ranks group a well and puts group b's
    positives below every negative."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 20)
    groups = np.repeat(["a", "b"], 20)
    score = np.where(y == 1, rng.uniform(0.6, 1.0, 40), rng.uniform(0.3, 0.6, 40))
    score[(groups == "b") & (y == 1)] = rng.uniform(0.0, 0.25, 10)
    probabilities = np.stack([1 - score, score], axis=1)
    patients = [f"P{i // 2}" for i in range(40)]
    return y, probabilities, patients, list(groups)


def test_a_group_whose_positives_rank_low_is_found(scored):
    y, p, patients, groups = scored
    a, b = subgroup_metrics(y, p, patients, groups, CLASSES, n_boot=0)
    assert (a["value"], b["value"]) == ("a", "b")
    assert a["auc_positives_vs_all_negatives"] == pytest.approx(1.0)
    assert b["auc_positives_vs_all_negatives"] == pytest.approx(0.0)
    keep = (np.asarray(groups) == "b") & (y == 0) | (y == 1)
    assert b["auc_negatives_vs_all_positives"] == pytest.approx(roc_auc_score(y[keep], p[keep, 1]))
    assert b["auc"] == pytest.approx(roc_auc_score(y[20:], p[20:, 1]))
    assert (b["n_clips"], b["n_patients"], b["n_absent"], b["n_present"]) == (20, 10, 10, 10)


def test_a_one_class_group_has_no_auc_of_its_own_but_ranks_against_the_rest(scored):
    y, p, patients, _ = scored
    groups = ["pos" if t else "neg" for t in y]
    neg, pos = subgroup_metrics(y, p, patients, groups, CLASSES, n_boot=50)
    assert neg["auc"] is None and neg["auc_ci"] is None
    assert pos["auc_positives_vs_all_negatives"] == pytest.approx(roc_auc_score(y, p[:, 1]))
    assert pos["auc_negatives_vs_all_positives"] is None
    assert pos["mean_p_present_of_absent"] is None
    assert pos["mean_p_present_of_present"] == pytest.approx(p[y == 1, 1].mean())


def test_groups_come_in_natural_order_with_blanks_last(scored):
    y, p, patients, _ = scored
    groups = ["10", "2", " ", "x"] * 10
    assert [row["value"] for row in subgroup_metrics(y, p, patients, groups, CLASSES, n_boot=0)] == \
        ["2", "10", "x", BLANK]


def test_bootstrap_intervals_hold_the_point_estimate(scored):
    y, p, patients, groups = scored
    a = subgroup_metrics(y, p, patients, groups, CLASSES, n_boot=200)[0]
    low, high = a["accuracy_ci"]
    assert low <= a["accuracy"] <= high


def test_mismatched_lengths_are_refused(scored):
    y, p, patients, groups = scored
    with pytest.raises(ValueError, match="one label, probability row, patient and group per clip"):
        subgroup_metrics(y, p, patients, groups[:-1], CLASSES)


def _manifest(tmp_path, n=40):
    path = tmp_path / "m.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "patient", "zone"])
        for i in range(n):
            writer.writerow([f"clips/c{i}.mp4", f"P{i // 2}", "R1" if i < n // 2 else "L1"])
    return Manifest.load(path)


def test_clips_match_the_manifest_as_written_or_resolved(tmp_path):
    manifest = _manifest(tmp_path)
    resolved = str((tmp_path / "clips" / "c3.mp4").resolve())
    assert prediction_rows(manifest, ["clips/c5.mp4", resolved, "./clips/../clips/c7.mp4"]) == [5, 3, 7]


def test_clips_named_relative_to_the_working_folder_match(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # as `lungus infer ../clips` names them
    assert manifest_rows(manifest, ["../clips/c4.mp4"]) == [4]


def test_a_clip_from_another_folder_matches_by_its_file_name_only_when_unique(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("clip,patient\nclips/a.mp4,P1\nold/b.mp4,P2\nnew/b.mp4,P3\n")
    manifest = Manifest.load(path)
    assert manifest_rows(manifest, ["/copies/a.mp4", "/copies/b.mp4", "/copies/c.mp4"]) == [0, None, None]


def test_a_clip_outside_the_manifest_is_a_one_line_error(tmp_path):
    manifest = _manifest(tmp_path)
    with pytest.raises(LungUSError, match="clip clips/other.mp4 of the predictions is not in this manifest") as error:
        prediction_rows(manifest, ["clips/c1.mp4", "clips/other.mp4"])
    assert str(manifest.path) in str(error.value)


def test_written_tables_and_figures(scored, tmp_path):
    y, p, patients, _ = scored
    manifest = _manifest(tmp_path)
    predictions = [{"clip": f"clips/c{i}.mp4", "patient": patients[i], "target": np.eye(2)[y[i]].tolist(),
                    "probabilities": p[i].tolist()} for i in range(40)]
    tables, files = write_subgroups(tmp_path / "out", predictions, CLASSES, manifest, ["zone"], n_boot=50)
    assert [row["value"] for row in tables["zone"]] == ["L1", "R1"]
    with open(files["by_zone"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["value"] for r in rows] == ["L1", "R1"]
    assert float(rows[1]["auc"]) == pytest.approx(tables["zone"][1]["auc"], abs=1e-5)
    assert {"auc_ci_low", "auc_ci_high"} <= set(rows[0])
    with Image.open(files["by_zone_figure"]) as image:
        assert image.format == "PNG" and image.width > 300


def test_an_unknown_column_is_refused_before_any_work(scored, tmp_path):
    manifest = _manifest(tmp_path)
    with pytest.raises(LungUSError, match="no column 'site'"):
        write_subgroups(tmp_path / "out", [], CLASSES, manifest, ["site"])
    assert not (tmp_path / "out").exists()


def test_a_three_class_task_gets_its_own_auc_and_no_binary_columns(tmp_path):
    rng = np.random.default_rng(1)
    y = np.tile([0, 1, 2], 14)[:40]
    probabilities = rng.dirichlet(np.ones(3), 40)
    predictions = [{"clip": f"clips/c{i}.mp4", "patient": f"P{i // 2}", "target": np.eye(3)[y[i]].tolist(),
                    "probabilities": probabilities[i].tolist()} for i in range(40)]
    tables, files = write_subgroups(tmp_path / "out", predictions, ("none", "discrete", "confluent"),
                                    _manifest(tmp_path), ["zone"], ordinal=True, n_boot=0)
    row = tables["zone"][0]  # L1: the manifest's second half
    assert row["value"] == "L1"
    assert row["auc"] is not None and "kappa_quadratic" in row
    assert "auc_positives_vs_all_negatives" not in row
    assert (row["n_none"], row["n_discrete"], row["n_confluent"]) == tuple(int((y[20:] == k).sum()) for k in range(3))
    assert files["by_zone_figure"].stat().st_size > 0
