"""`lungus realism`: one summary line on stdout; bad input is one line and exit 2 before any work
(the study itself: Testing/lungus/studies/test_studies_realism.py)."""

from __future__ import annotations

import csv
import json

import pytest

from lungus.cli import main

TINY = ["--clips", "12", "--patients", "6", "--frames", "8", "--size", "64x64", "--device", "cpu", "--n-boot", "100"]


@pytest.fixture
def recipe(tiny_bline2_recipe):
    return tiny_bline2_recipe


def copy_manifest(source, target, change):
    """A copy of ``source`` at ``target`` with its clips named by absolute paths, each row passed
    through ``change`` (the session's collection is left as it is)."""
    with open(source, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [change({**row, "clip": str(source.parent / row["clip"])}) for row in rows]
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


def test_one_summary_line_and_realism_json(tiny_collection, recipe, tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "out"
    assert main(["realism", "--real", str(tiny_collection), "--out", str(out), "--config", str(recipe), *TINY]) == 0
    printed = capsys.readouterr().out.splitlines()
    result = json.loads((out / "realism.json").read_text())
    assert len(printed) == 1 and printed[0].startswith(f"realism: AUC {result['auc']:.3f} [")
    assert "on 16 real clips of 8 patients" in printed[0] and printed[0].endswith(f"-> {out / 'realism.json'}")
    assert result["simulation"]["probe"] == "mixed" and result["simulation"]["size"] == [64, 64]


def without_truth(row):
    return {key: value for key, value in row.items() if not key.startswith("truth_")}


def without_blines(row):
    return {**row, "truth_bline2": "none", "truth_bline3": "none", "truth_lus4": "0"}


def a_missing_clip(row):
    return {**row, "clip": row["clip"].replace(".mp4", "-gone.mp4")}


@pytest.mark.parametrize("make, extra, problem", [
    (None, ["--real", "nowhere.csv"], "nowhere.csv: "),
    (lambda m, d: copy_manifest(m, d / "no_labels.csv", without_truth), [],
     "no reference labels for bline2: pass --labels"),
    (lambda m, d: copy_manifest(m, d / "all_negative.csv", without_blines), [],
     "an AUC needs clips with and without B-lines"),
    (lambda m, d: copy_manifest(m, d / "missing_clip.csv", a_missing_clip), [],
     "labelled clips are missing, e.g."),
    (None, ["--labels", "expert:nobody"], "nobody"),
    (None, ["--config", "nowhere.yaml"], "nowhere.yaml: recipe not found"),
    (None, ["--clips", "4", "--patients", "5"], "patients must be from 1 to clips (4)"),
    (None, ["--device", "tpu"], "device"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_work(tiny_collection, recipe, tmp_path, capsys, make, extra,
                                                          problem):
    real = make(tiny_collection, tmp_path) if make else tiny_collection
    args = ["realism", "--real", str(real), "--out", str(tmp_path / "out"), "--config", str(recipe), *TINY, *extra]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("lungus realism: error: ") and problem in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_recipe_for_another_task_is_refused(tiny_collection, tiny_bline2_recipe, tmp_path, capsys):
    recipe = tmp_path / "bline3.yaml"
    recipe.write_text(tiny_bline2_recipe.read_text().replace("task: bline2", "task: bline3"))
    assert main(["realism", "--real", str(tiny_collection), "--out", str(tmp_path / "out"), "--config", str(recipe),
                 *TINY]) == 2
    assert "realism trains a bline2 classifier; this recipe trains bline3" in capsys.readouterr().err


def test_a_used_folder_needs_resume(tiny_collection, recipe, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine\n")
    assert main(["realism", "--real", str(tiny_collection), "--out", str(tmp_path / "out"), "--config", str(recipe),
                 *TINY]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]
