"""The review folder (lungus.review.store): verdicts into history.jsonl and manifest.csv, on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lungus.cli import main
from lungus.errors import LungUSError
from lungus.review.store import ReviewFolder, Verdict

ENGINE = Path(__file__).resolve().parents[3] / "LungUSBLines"


def verdict(clip, label="discrete", reviewer="tom", **extra) -> Verdict:
    return Verdict(clip=str(clip), reviewer=reviewer, scheme="bline3", label=label, **extra)


def test_a_verdict_becomes_a_manifest_row_with_paths_relative_to_the_folder(reviews, review_clips):
    stored = reviews.record(verdict(review_clips[0], "Discrete", model_label="none", model_probability=0.81,
                                    zone="R2", comment="two B-lines"))
    assert stored.label == "discrete" and not stored.agreed and stored.time.endswith("Z")
    [row] = reviews.rows()
    assert row == {
        "clip": "../scans/patient0_clip.seq.nrrd", "patient": "patient0_clip", "zone": "R2",
        "expert_tom": "discrete", "model_label": "none", "model_probability": "0.81", "reviewer": "tom",
        "reviewed_at": stored.time, "comment": "two B-lines", "mask": "", "scheme": "bline3",
    }


def test_a_second_review_of_a_clip_replaces_its_label_and_keeps_the_history(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none", model_label="none"))
    reviews.record(verdict(review_clips[1], "confluent"))
    reviews.record(verdict(review_clips[0], "confluent", comment="missed the right side"))
    rows = reviews.rows()
    assert [row["expert_tom"] for row in rows] == ["confluent", "confluent"]
    assert rows[0]["comment"] == "missed the right side"
    assert [v.label for v in reviews.history(review_clips[0])] == ["none", "confluent"]
    assert len(reviews.history()) == 3


def test_each_reviewer_has_an_expert_column_and_the_latest_verdict_fills_the_rest(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none", reviewer="tom"))
    reviews.record(verdict(review_clips[0], "discrete", reviewer="ana-2", patient="P7"))
    [row] = reviews.rows()
    assert (row["expert_tom"], row["expert_ana-2"], row["reviewer"], row["patient"]) == ("none", "discrete",
                                                                                          "ana-2", "P7")


def test_the_review_manifest_passes_lungus_validate(reviews, review_clips, capsys):
    for clip, label in zip(review_clips, ("none", "discrete", "confluent")):
        reviews.record(verdict(clip, label, model_label="none", model_probability=0.5))
    assert main(["validate", str(reviews.manifest_path), "--json"]) == 0
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [issue for issue in issues if issue["severity"] == "error"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reviewer": "tom smith"}, "reviewer name 'tom smith' must be letters, digits"),
        ({"scheme": "bline4"}, "scheme 'bline4' is not a clip label scheme"),
        ({"label": "maybe"}, "label 'maybe' is not a bline3 class; choose one of none, discrete, confluent"),
        ({"model_probability": 1.5}, "model probability 1.5 is not a number from 0 to 1"),
    ],
)
def test_a_bad_verdict_is_a_one_line_error_and_writes_nothing(reviews, review_clips, change, message):
    fields = {"clip": str(review_clips[0]), "reviewer": "tom", "scheme": "bline3", "label": "none", **change}
    with pytest.raises(LungUSError, match=message) as raised:
        reviews.record(Verdict(**fields))
    assert "\n" not in str(raised.value)
    assert not reviews.history_path.exists() and not reviews.manifest_path.exists()


def test_a_second_scheme_in_one_folder_is_refused(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none"))
    with pytest.raises(LungUSError, match="holds bline3 reviews; record bline2 labels in another review folder"):
        reviews.record(Verdict(str(review_clips[1]), "tom", "bline2", "present"))


def test_a_missing_clip_is_refused(reviews, tmp_path):
    with pytest.raises(LungUSError, match="clip not found"):
        reviews.record(verdict(tmp_path / "nowhere.mp4"))


_KILLED_WRITER = """
import resource, signal, sys
from lungus.review.store import ReviewFolder, Verdict
reviews = ReviewFolder(sys.argv[1])
# The kernel kills a process writing past its file-size limit (SIGXFSZ, which Python ignores
# unless told otherwise): the verdict's line is cut off 40 bytes in, as by a crash mid-append.
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
limit = reviews.history_path.stat().st_size + 40
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
reviews.record(Verdict(sys.argv[2], "tom", "bline3", "confluent", comment="x" * 200))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_a_writer_killed_mid_append_loses_no_earlier_review(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none"))
    reviews.record(verdict(review_clips[1], "discrete"))
    before = reviews.history_path.read_bytes()
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(reviews.folder), str(review_clips[2])],
                            env={**os.environ, "PYTHONPATH": str(ENGINE)}, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGXFSZ, killed.stderr.decode()
    torn = reviews.history_path.read_bytes()
    assert torn.startswith(before) and len(torn) == len(before) + 40  # half a line really was left

    reopened = ReviewFolder(reviews.folder)
    assert [v.label for v in reopened.history()] == ["none", "discrete"]
    reopened.record(verdict(review_clips[2], "confluent"))
    lines = reopened.history_path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["label"] for line in lines[:-1]] == ["none", "discrete",
                                                                                        "confluent"]
    assert [row["expert_tom"] for row in reopened.rows()] == ["none", "discrete", "confluent"]


def test_a_crash_before_the_manifest_is_renamed_keeps_the_review_and_reopening_rebuilds(
    reviews, review_clips, monkeypatch
):
    reviews.record(verdict(review_clips[0], "none"))

    def crash(source, target):
        raise OSError(5, "Input/output error (simulated crash)")

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="simulated crash"):
            reviews.record(verdict(review_clips[1], "discrete"))
    assert [row["expert_tom"] for row in reviews.rows()] == ["none"]  # the manifest is stale
    assert [row["expert_tom"] for row in ReviewFolder(reviews.folder).rows()] == ["none", "discrete"]


def test_a_deleted_manifest_is_rebuilt_from_the_history(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none"))
    rows = reviews.rows()
    reviews.manifest_path.unlink()
    assert ReviewFolder(reviews.folder).rows() == rows


def test_a_damaged_line_inside_the_history_is_an_error_not_a_silent_loss(reviews, review_clips):
    reviews.record(verdict(review_clips[0], "none"))
    with open(reviews.history_path, "ab") as handle:
        handle.write(b"{not json\n")
    with pytest.raises(LungUSError, match="line 2 is not a review record"):
        ReviewFolder(reviews.folder).history()
