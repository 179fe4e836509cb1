"""Merged manifests (`lungus merge`) and train-only clips: paths, refusals, folds, validation."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.merge import merge_manifests
from lungus.data.manifests.split import split_manifest
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError
from lungus.train.config import TrainConfig
from lungus.train.setup import split_rows

REAL = """\
    clip,patient,bline2
    clips/r1.npy,p1,present
    clips/r2.npy,p1,absent
    clips/r3.npy,p2,present
    clips/r4.npy,p3,absent
    clips/r5.npy,p4,present
    clips/r6.npy,p5,absent
    """
SIMULATED = """\
    clip,patient,truth_bline2,mask
    clips/s1.npy,P001,present,masks/s1.npy
    clips/s2.npy,P002,absent,masks/s2.npy
    """


@pytest.fixture
def merged(write_manifest, tmp_path):
    real = write_manifest(REAL, clips=[f"clips/r{i}.npy" for i in range(1, 7)], name="real/manifest.csv")
    simulated = write_manifest(SIMULATED, clips=["clips/s1.npy", "clips/s2.npy", "masks/s1.npy", "masks/s2.npy"],
                               name="sim/manifest.csv")
    manifest = merge_manifests(tmp_path / "joint" / "manifest.csv", [real], [simulated])
    manifest.save()
    return Manifest.load(tmp_path / "joint" / "manifest.csv")


def test_merged_paths_still_name_the_same_files(merged, tmp_path):
    assert merged.clip_path(0) == (tmp_path / "real" / "clips" / "r1.npy").resolve()
    assert merged.resolve(6, "mask") == (tmp_path / "sim" / "masks" / "s1.npy").resolve()
    assert all(path.is_file() for path in merged.clip_paths())


def test_merged_columns_are_the_union_and_train_only_marks_the_simulated_rows(merged):
    assert {"bline2", "truth_bline2", "mask", "train_only"} <= set(merged.columns)
    assert merged.train_only() == [False] * 6 + [True] * 2
    assert merged.scored_rows() == list(range(6))


def test_a_clip_listed_twice_is_refused(write_manifest, tmp_path):
    real = write_manifest(REAL, clips=[f"clips/r{i}.npy" for i in range(1, 7)])
    with pytest.raises(LungUSError, match="line 2: clip 'clips/r1.npy' is also listed at .*manifest.csv:2"):
        merge_manifests(tmp_path / "joint.csv", [real, real])


def test_a_patient_with_train_only_and_scored_clips_is_refused(write_manifest, tmp_path):
    real = write_manifest(REAL, clips=[f"clips/r{i}.npy" for i in range(1, 7)])
    extra = write_manifest("clip,patient\nclips/x.npy,p3\n", clips=["clips/x.npy"], name="extra.csv")
    with pytest.raises(LungUSError, match="patient 'p3' has train-only clips .*extra.csv:2.* and scored ones"):
        merge_manifests(tmp_path / "joint.csv", [real], [extra])


def test_split_gives_train_only_clips_no_fold_and_the_others_their_folds_alone(merged, tmp_path):
    split_manifest(merged, 2, seed=4, source="bline2")
    folds = merged.folds()
    assert folds[6:] == [None, None] and set(folds[:6]) == {0, 1}
    alone = Manifest.load(tmp_path / "real" / "manifest.csv")
    split_manifest(alone, 2, seed=4, source="bline2")
    assert alone.folds() == folds[:6]
    assert not [issue for issue in validate_manifest(merged, check_files=False) if issue.column == "fold"]


def test_train_only_clips_are_never_validation_clips(merged):
    hard = [1, 0, 1, 0, 1, 0, 1, 0]
    for seed in range(5):
        config = TrainConfig(manifest=str(merged.path), out="unused", val_fraction=0.5, split_seed=seed)
        train, val = split_rows(merged, list(range(8)), np.array(hard), config)
        assert {6, 7} <= set(train) and not {6, 7} & set(val) and sorted(train + val) == list(range(8))


def test_validation_reports_a_train_only_value_that_is_not_yes_or_no(write_manifest):
    path = write_manifest("clip,patient,train_only\nclips/a.npy,p1,maybe\n", clips=["clips/a.npy"])
    issues = validate_manifest(Manifest.load(path))
    assert [(i.severity, i.line, i.column) for i in issues] == [("error", 2, "train_only")]
    with pytest.raises(LungUSError, match="line 2: column train_only: 'maybe' is not yes, no or blank"):
        Manifest.load(path).train_only()


def test_validation_reports_a_patient_with_train_only_and_scored_clips(write_manifest):
    path = write_manifest("clip,patient,train_only\nclips/a.npy,p1,yes\nclips/b.npy,p1,\n",
                          clips=["clips/a.npy", "clips/b.npy"])
    issues = [i for i in validate_manifest(Manifest.load(path)) if i.column == "train_only"]
    assert len(issues) == 1 and issues[0].line == 3 and "train-only clips (line 2)" in issues[0].message


def test_cli_merge_writes_the_manifest_and_says_what_it_holds(write_manifest, tmp_path, capsys):
    real = write_manifest(REAL, clips=[f"clips/r{i}.npy" for i in range(1, 7)], name="real/manifest.csv")
    simulated = write_manifest(SIMULATED, clips=["clips/s1.npy", "clips/s2.npy", "masks/s1.npy", "masks/s2.npy"],
                               name="sim/manifest.csv")
    out = tmp_path / "joint.csv"
    assert main(["merge", str(real), "--train-only", str(simulated), "--out", str(out)]) == 0
    assert "6 clips of 5 patients, and 2 train-only clips of 2 patients" in capsys.readouterr().out
    assert len(Manifest.load(out)) == 8


def test_cli_merge_refusal_is_one_line_and_exit_2(write_manifest, tmp_path, capsys):
    real = write_manifest(REAL, clips=[f"clips/r{i}.npy" for i in range(1, 7)])
    assert main(["merge", str(real), str(real), "--out", str(tmp_path / "joint.csv")]) == 2
    err = capsys.readouterr().err
    assert "is also listed at" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "joint.csv").exists()
