"""End to end: `lungus validate`, `lungus split`, `lungus labels` on real files in tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungus.cli import main
from lungus.data.labels.opinions import Opinions
from lungus.data.manifests.manifest import Manifest
from lungus.sim.raters import simulate_raters

N_CLIPS, CLIPS_PER_PATIENT = 48, 4


@pytest.fixture
def crowd_set(tmp_path):
    """48 tiny .npy clips of 12 patients, with crowd counts, experts, truth and opinions.csv."""
    rng = np.random.default_rng(0)
    truth = rng.choice(["none", "discrete", "confluent"], size=N_CLIPS, p=[0.4, 0.4, 0.2]).tolist()
    patients = [f"p{i // CLIPS_PER_PATIENT:02d}" for i in range(N_CLIPS)]
    clips = [f"clips/c{i:02d}.npy" for i in range(N_CLIPS)]
    (tmp_path / "clips").mkdir()
    for clip in clips:
        np.save(tmp_path / clip, np.zeros((2, 8, 8), dtype=np.uint8))
    raters = simulate_raters(truth, patients, seed=0)
    columns = raters.manifest_columns()
    rows = [
        {"clip": c, "patient": p, "truth_bline3": t, **{k: v[i] for k, v in columns.items()}}
        for i, (c, p, t) in enumerate(zip(clips, patients, truth))
    ]
    Manifest.from_rows(tmp_path / "manifest.csv", rows).save()
    Opinions.from_rows(raters.opinion_rows(clips)).save(tmp_path / "opinions.csv")
    return tmp_path / "manifest.csv"


def test_validate_a_valid_set_exits_0(crowd_set, capsys):
    assert main(["validate", str(crowd_set)]) == 0
    out = capsys.readouterr().out
    assert (
        "valid: 48 clips, 12 patients, 0 errors, 0 warnings" in out and "opinions.csv (480 opinions)" in out
    )


def test_validate_reports_errors_with_line_and_column_and_exits_2(crowd_set, capsys):
    text = crowd_set.read_text().splitlines()
    text[3] = text[3].replace("clips/c02.npy", "clips/missing.npy")
    crowd_set.write_text("\n".join(text) + "\n")
    assert main(["validate", str(crowd_set), "--no-opinions"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{crowd_set}:4: error: column clip: clip file not found")
    assert "INVALID" in out[-1] and "1 error," in out[-1]


def test_validate_json_lists_issues(crowd_set, capsys):
    crowd_set.write_text(crowd_set.read_text().replace("p01,", "p01 ,", 1).replace(",none,", ",nada,", 1))
    assert main(["validate", str(crowd_set), "--json", "--no-opinions"]) == 2
    record = json.loads(capsys.readouterr().out)
    assert record["valid"] is False and record["errors"] == 1
    assert record["issues"][0]["column"].startswith("expert_") and record["issues"][0]["line"] >= 2


def test_validate_strict_fails_on_an_empty_class(crowd_set, capsys):
    manifest = Manifest.load(crowd_set)
    manifest.set_column(
        "bline3", ["none" if t == "confluent" else t for t in manifest.column("truth_bline3")]
    )
    manifest.save()
    assert main(["validate", str(crowd_set)]) == 0
    assert main(["validate", str(crowd_set), "--strict"]) == 2
    assert "empty class" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["validate", "split", "labels"])
def test_missing_manifest_is_a_one_line_error(tmp_path, capsys, command):
    extra = ["--folds", "3"] if command == "split" else []
    assert main([command, str(tmp_path / "nope.csv"), *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"lungus {command}: error: {tmp_path / 'nope.csv'}: manifest not found\n"


def test_split_writes_patient_disjoint_folds_in_place_deterministically(crowd_set, capsys):
    assert main(["split", str(crowd_set), "--folds", "4", "--seed", "7"]) == 0
    first = crowd_set.read_bytes()
    manifest = Manifest.load(crowd_set)
    folds_of = {}
    for patient, fold in zip(manifest.patients, manifest.folds()):
        folds_of.setdefault(patient, set()).add(fold)
    assert all(len(f) == 1 for f in folds_of.values()) and set().union(*folds_of.values()) == {0, 1, 2, 3}
    assert "stratified by truth (bline3)" in capsys.readouterr().out
    assert main(["split", str(crowd_set), "--folds", "4", "--seed", "7"]) == 0
    assert crowd_set.read_bytes() == first
    assert main(["validate", str(crowd_set)]) == 0


def test_split_out_writes_a_new_manifest_and_leaves_the_input(crowd_set, tmp_path):
    before = crowd_set.read_bytes()
    out = tmp_path / "splits" / "five.csv"
    assert main(["split", str(crowd_set), "--folds", "3", "--stratify", "crowd-ds", "--out", str(out)]) == 0
    assert crowd_set.read_bytes() == before
    copy = Manifest.load(out)
    assert copy.rows[0]["clip"] == "../clips/c00.npy" and all(p.is_file() for p in copy.clip_paths())


def test_split_with_too_many_folds_is_refused(crowd_set, capsys):
    assert main(["split", str(crowd_set), "--folds", "13"]) == 2
    assert "12 patients cannot fill 13 folds" in capsys.readouterr().err


def test_labels_writes_json_and_figures(crowd_set, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["labels", str(crowd_set), "--out", str(out), "--panel", "a,b,c"]) == 0
    text = capsys.readouterr().out
    assert "Concordance (Duggan 2023 style), expert panel a, b, c" in text and "crowd-ds" in text
    report = json.loads((out / "labels.json").read_text())
    assert report["n_clips"] == 48 and report["concordance"]["panel"] == ["a", "b", "c"]
    for row in report["vs_truth"].values():
        assert row["n"] == 48
    for name in ("confusion_vs_truth.png", "confusion_vs_panel.png", "agreement_kappa.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_json_to_stdout(crowd_set, capsys):
    assert main(["labels", str(crowd_set), "--json", "--scheme", "bline2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == ["absent", "present"] and "dawid_skene" in report


def test_labels_with_an_unknown_panel_expert_is_an_error(crowd_set, capsys):
    assert main(["labels", str(crowd_set), "--panel", "a,zed"]) == 2
    assert "panel expert zed" in capsys.readouterr().err


@pytest.fixture
def manifest_reaching_out(crowd_set, tmp_path):
    """crowd_set's manifest saved into shared/: every clip path now starts with ../ (its own data)."""
    manifest = Manifest.load(crowd_set)
    manifest.save(tmp_path / "shared" / "manifest.csv")
    assert manifest.rows[0]["clip"] == "../clips/c00.npy"
    return tmp_path / "shared" / "manifest.csv"


def test_validate_allows_paths_outside_the_manifest_folder_by_default(manifest_reaching_out, capsys):
    assert main(["validate", str(manifest_reaching_out), "--no-opinions"]) == 0


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "{manifest}"],
        ["infer", "{manifest}", "--model", "{out}/none.pt", "--out", "{out}"],
        ["evaluate", "--model", "{out}/none.pt", "--manifest", "{manifest}", "--out", "{out}"],
        ["train", "--manifest", "{manifest}", "--task", "bline3", "--model", "frame_cnn", "--out", "{out}"],
    ],
    ids=lambda command: command[0],
)
def test_confine_paths_refuses_a_manifest_reaching_outside_with_one_line(
    manifest_reaching_out, tmp_path, capsys, command
):
    out = tmp_path / "out"
    arguments = [part.format(manifest=manifest_reaching_out, out=out) for part in command]
    assert main([*arguments, "--confine-paths"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"lungus {command[0]}: error: {manifest_reaching_out}: line 2: column clip: '../clips/c00.npy' leads "
        f"outside the manifest's folder {manifest_reaching_out.parent.resolve()} (refused by --confine-paths)"
    )
    assert not out.exists()


def test_split_says_how_to_train_on_its_folds(crowd_set, capsys):
    assert main(["split", str(crowd_set), "--folds", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "lungus train ignores the fold column unless told: train with --fold K to hold out fold K "
        "(--folds 3 cross-validates over these folds)")
    with pytest.raises(SystemExit):
        main(["split", "--help"])
    assert "train with --fold K to hold out fold K" in " ".join(capsys.readouterr().out.split())
