"""Manifest validation: one test per error type, each with the line and column it must name."""

from __future__ import annotations

import pytest

from lungus.data.labels.opinions import Opinions
from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.validation import validate_manifest

CLIPS = tuple(f"clips/{name}.npy" for name in "abcdef")
GOOD = """\
    clip,patient,bline3,fold
    clips/a.npy,p1,none,0
    clips/b.npy,p2,discrete,0
    clips/c.npy,p3,confluent,0
    clips/d.npy,p4,none,1
    clips/e.npy,p5,discrete,1
    clips/f.npy,p6,confluent,1
    """


def _issues(path, **kwargs):
    manifest = Manifest.load(path)
    return validate_manifest(manifest, **kwargs)


def _errors(path, **kwargs):
    return [(i.line, i.column, i.message) for i in _issues(path, **kwargs) if i.severity == "error"]


def test_a_good_manifest_has_no_issues(write_manifest):
    assert _issues(write_manifest(GOOD, CLIPS)) == []


def test_missing_clip_file(write_manifest):
    path = write_manifest(GOOD, CLIPS[:5])
    [(line, column, message)] = _errors(path)
    assert (line, column) == (7, "clip") and "not found" in message and "f.npy" in message


def test_missing_files_are_not_checked_when_asked(write_manifest):
    assert _errors(write_manifest(GOOD, ()), check_files=False) == []


def test_unknown_label_value(write_manifest):
    path = write_manifest(GOOD.replace("p2,discrete", "p2,lots"), CLIPS)
    [(line, column, message)] = _errors(path)
    assert (line, column) == (3, "bline3") and "'lots'" in message and "none, discrete, confluent" in message


def test_duplicated_clip(write_manifest):
    text = GOOD.replace("clips/c.npy,p3", "./clips/a.npy,p3")  # same file, written differently
    [(line, column, message)] = _errors(write_manifest(text, CLIPS))
    assert (line, column) == (4, "clip") and "duplicated" in message and "line 2" in message


def test_patient_in_two_folds_is_leakage(write_manifest):
    text = GOOD.replace("clips/d.npy,p4", "clips/d.npy,p1")  # p1 in fold 0 and fold 1
    [(line, column, message)] = _errors(write_manifest(text, CLIPS))
    assert (line, column) == (5, "fold") and "p1" in message and "leakage" in message


def test_empty_class_is_a_warning_not_an_error(write_manifest):
    path = write_manifest(GOOD.replace("confluent", "discrete"), CLIPS)
    issues = _issues(path)
    assert [i.severity for i in issues] == ["warning"]
    assert (
        issues[0].column == "bline3"
        and "empty class" in issues[0].message
        and "confluent" in issues[0].message
    )


def test_empty_class_in_one_fold_is_a_warning(write_manifest):
    text = GOOD.replace("p3,confluent,0", "p3,confluent,1")  # fold 0 has no confluent clip
    [issue] = _issues(write_manifest(text, CLIPS))
    assert issue.severity == "warning" and "fold 0" in issue.message and "'confluent'" in issue.message


def test_missing_required_column(write_manifest):
    path = write_manifest("clip,bline3\nclips/a.npy,none\n", CLIPS[:1])
    assert (1, "patient", "missing required column") in _errors(path)


def test_negative_crowd_count(write_manifest):
    text = """\
        clip,patient,crowd_none,crowd_discrete,crowd_confluent
        clips/a.npy,p1,3,-1,0
        clips/b.npy,p2,1,2,0
        """
    [(line, column, message)] = _errors(write_manifest(text, CLIPS[:2]))
    assert (line, column) == (2, "crowd_discrete") and "non-negative integer" in message


def test_non_integer_crowd_count(write_manifest):
    text = """\
        clip,patient,crowd_none,crowd_discrete,crowd_confluent
        clips/a.npy,p1,3,0,0
        clips/b.npy,p2,1,2.5,1
        """
    [(line, column, _)] = _errors(write_manifest(text, CLIPS[:2]))
    assert (line, column) == (3, "crowd_discrete")


def test_incomplete_crowd_columns(write_manifest):
    path = write_manifest("clip,patient,crowd_none,crowd_discrete\nclips/a.npy,p1,1,2\n", CLIPS[:1])
    [(line, column, message)] = _errors(path)
    assert line == 1 and column == "crowd_confluent" and "need all of" in message


def test_row_with_wrong_number_of_fields(write_manifest):
    path = write_manifest(GOOD.replace("clips/b.npy,p2,discrete,0", "clips/b.npy,p2,discrete,0,extra"), CLIPS)
    [(line, column, message)] = _errors(path)
    assert (line, column) == (3, None) and "5 fields" in message


def test_blank_patient(write_manifest):
    [(line, column, _)] = _errors(write_manifest(GOOD.replace(",p2,", ",,"), CLIPS))
    assert (line, column) == (3, "patient")


def test_fold_that_is_not_an_integer(write_manifest):
    [(line, column, _)] = _errors(write_manifest(GOOD.replace("p1,none,0", "p1,none,first"), CLIPS))
    assert (line, column) == (2, "fold")


def test_expert_column_fitting_no_scheme(write_manifest):
    text = """\
        clip,patient,expert_kim
        clips/a.npy,p1,none
        clips/b.npy,p2,discrete
        clips/c.npy,p3,maybe
        """
    [(line, column, message)] = _errors(write_manifest(text, CLIPS))
    assert (line, column) == (4, "expert_kim") and "bline3" in message


def test_truth_column_with_unknown_scheme(write_manifest):
    path = write_manifest("clip,patient,truth_severity\nclips/a.npy,p1,2\n", CLIPS[:1])
    [(line, column, _)] = _errors(path)
    assert (line, column) == (1, "truth_severity")


def test_opinions_on_clips_not_in_the_manifest_and_bad_labels(write_manifest, tmp_path):
    path = write_manifest(GOOD, CLIPS)
    opinions_path = tmp_path / "opinions.csv"
    opinions_path.write_text(
        "clip,rater,label\nclips/a.npy,r1,none\nclips/zzz.npy,r1,none\nclips/b.npy,r2,many\n",
        encoding="utf-8",
    )
    issues = _issues(path, opinions=Opinions.load(opinions_path))
    errors = {(i.file, i.line, i.column) for i in issues if i.severity == "error"}
    assert errors == {(str(opinions_path), 3, "clip"), (str(opinions_path), 4, "label")}


def test_crowd_counts_that_disagree_with_the_opinions_file_are_a_warning(write_manifest, tmp_path):
    text = """\
        clip,patient,crowd_none,crowd_discrete,crowd_confluent
        clips/a.npy,p1,2,0,0
        clips/b.npy,p2,0,1,1
        """
    path = write_manifest(text, CLIPS[:2])
    opinions = Opinions.from_rows([("clips/a.npy", "r1", "none"), ("clips/b.npy", "r1", "discrete")])
    issues = [i for i in _issues(path, opinions=opinions) if "differ" in i.message]
    assert [(i.severity, i.line) for i in issues] == [("warning", 2), ("warning", 3)]


def test_issue_format_names_file_line_and_column(write_manifest):
    path = write_manifest(GOOD.replace("p2,discrete", "p2,lots"), CLIPS)
    [issue] = [i for i in _issues(path) if i.severity == "error"]
    assert issue.format(path) == (
        f"{path}:3: error: column bline3: unknown label: 'lots' is not a bline3 label; "
        "expected one of none, discrete, confluent"
    )


def test_missing_mask_file(write_manifest):
    text = "clip,patient,mask\nclips/a.npy,p1,masks/a.seq.nrrd\nclips/b.npy,p2,\n"
    [(line, column, message)] = _errors(write_manifest(text, CLIPS[:2]))
    assert (line, column) == (2, "mask") and "a.seq.nrrd" in message


@pytest.mark.parametrize("value", ["abc", "0", "-0.2", "0.2 0.3 0.4", "nan"])
def test_an_annotation_spacing_that_is_not_one_or_two_positive_numbers_is_an_error(write_manifest, value):
    path = write_manifest(f"clip,patient,annotation_spacing_mm\nclips/a.npy,p1,{value}\nclips/b.npy,p2,0.26 0.25\n",
                          clips=["clips/a.npy", "clips/b.npy"])
    issues = [i for i in validate_manifest(Manifest.load(path)) if i.column == "annotation_spacing_mm"]
    assert [(i.severity, i.line) for i in issues] == [("error", 2)]
    assert "is not a pixel spacing in mm" in issues[0].message
