"""LungUSBLinesLib.review into a review folder (lungus.review.store), on a real MRML scene: the
reviewer's verdict on a loaded clip and the masks they corrected end up in the manifest and masks
files, and the manifest passes `lungus validate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.cli import main  # noqa: E402
from lungus.data.labels.annotation_labels import IGNORE_INDEX  # noqa: E402
from lungus.data.labels.label_images import read_label_masks  # noqa: E402
from lungus.data.labels.schemes import SEG_CLASSES  # noqa: E402
from lungus.errors import LungUSError  # noqa: E402
from lungus.review.store import ReviewFolder  # noqa: E402
from LungUSBLinesLib import review  # noqa: E402
from LungUSBLinesLib.results import remove_analysis  # noqa: E402
from LungUSBLinesLib.sequences import create_browser, frames_to_sequence  # noqa: E402

B_LINE = next(c for c in SEG_CLASSES if c.name == "B-line")


def test_a_verdict_and_an_edited_mask_end_up_in_the_manifest_and_the_masks(headless, analysed_clip, tmp_path):
    loaded, _, masks = analysed_clip
    under_review = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(2)
    missed = np.zeros(masks.shape[1:], bool)
    missed[5:, 13] = True
    review.paint_frame(headless.scene, under_review, "B-line", missed)  # frame 2: a B-line the model missed
    under_review.mark_reviewed(0)  # frame 0: right as it is
    verdict = review.clip_verdict(headless.scene, loaded.nodes, "tom", "absent", comment="only artefacts")
    saved = review.save_review(tmp_path / "reviews", verdict, under_review)

    [row] = ReviewFolder(tmp_path / "reviews").rows()
    assert row["expert_tom"] == "absent" and row["scheme"] == "bline2"
    assert (row["model_label"], float(row["model_probability"])) == ("present", 0.8)
    assert (row["comment"], row["reviewer"], row["patient"]) == ("only artefacts", "tom", "zone3")
    assert row["mask"] == "masks/zone3.seq.nrrd" and saved.masks == tmp_path / "reviews" / row["mask"]
    assert saved.reviewed_frames == (0, 2)
    written = read_label_masks(saved.masks)
    np.testing.assert_array_equal(written[0], masks[0])
    np.testing.assert_array_equal(written[2], np.where(missed, B_LINE.id, masks[2]))
    assert (written[[1, 3, 4]] == IGNORE_INDEX).all()


def test_the_review_manifest_from_slicer_passes_lungus_validate(headless, analysed_clip, tmp_path, capsys):
    loaded, _, _ = analysed_clip
    under_review = review.start_mask_review(headless.scene, loaded.nodes)
    under_review.mark_reviewed(1)
    review.save_review(
        tmp_path / "reviews", review.clip_verdict(headless.scene, loaded.nodes, "tom"), under_review
    )
    assert main(["validate", str(tmp_path / "reviews" / "manifest.csv"), "--json"]) == 0
    issues = json.loads(capsys.readouterr().out)["issues"]
    assert [issue for issue in issues if issue["severity"] == "error"] == []


def test_agree_records_the_models_label(headless, analysed_clip):
    loaded, _, _ = analysed_clip
    verdict = review.clip_verdict(headless.scene, loaded.nodes, "tom")
    assert (verdict.label, verdict.model_label, verdict.model_probability) == ("present", "present", 0.8)
    assert verdict.agreed


def test_the_verdict_names_the_clip_file_it_was_read_from(headless, analysed_clip, tmp_path):
    loaded, _, _ = analysed_clip
    verdict = review.clip_verdict(headless.scene, loaded.nodes, "tom")
    assert verdict.clip == str((tmp_path / "clips" / "zone3.seq.nrrd").resolve())


def test_a_re_review_replaces_the_label_and_keeps_the_history(headless, analysed_clip, tmp_path):
    loaded, _, _ = analysed_clip
    folder = tmp_path / "reviews"
    review.save_review(folder, review.clip_verdict(headless.scene, loaded.nodes, "tom"))
    review.save_review(folder, review.clip_verdict(headless.scene, loaded.nodes, "tom", "absent"))
    reviews = ReviewFolder(folder)
    assert [row["expert_tom"] for row in reviews.rows()] == ["absent"]
    assert [v.label for v in reviews.history()] == ["present", "absent"]


def test_without_a_reviewed_frame_only_the_verdict_is_saved(headless, analysed_clip, tmp_path):
    loaded, _, _ = analysed_clip
    under_review = review.start_mask_review(headless.scene, loaded.nodes)
    saved = review.save_review(
        tmp_path / "reviews", review.clip_verdict(headless.scene, loaded.nodes, "tom"), under_review
    )
    assert saved.masks is None and saved.reviewed_frames == ()
    assert ReviewFolder(tmp_path / "reviews").rows()[0]["mask"] == ""
    assert not (tmp_path / "reviews" / "masks").exists()


def test_the_queue_entry_gives_patient_zone_and_what_the_model_said(headless, analysed_clip):
    from lungus.review.queue import QueueEntry

    loaded, nodes, _ = analysed_clip
    remove_analysis(headless.scene, nodes)  # opened from the queue, not analysed here
    entry = QueueEntry(
        rank=1, clip=str(loaded.clip.source), score=0.9, reasons={"uncertainty": 0.9},
        model_label="discrete", probability=0.55, patient="P7", zone="R2",
    )  # fmt: skip
    verdict = review.clip_verdict(headless.scene, loaded.nodes, "tom", "none", entry=entry)
    assert (verdict.scheme, verdict.model_label, verdict.model_probability) == ("bline3", "discrete", 0.55)
    assert (verdict.patient, verdict.zone, verdict.label) == ("P7", "R2", "none")


def test_a_clip_with_no_model_opinion_needs_its_scheme(headless, analysed_clip):
    loaded, nodes, _ = analysed_clip
    remove_analysis(headless.scene, nodes)
    with pytest.raises(LungUSError, match="no label scheme for this clip"):
        review.clip_verdict(headless.scene, loaded.nodes, "tom", "present")
    verdict = review.clip_verdict(headless.scene, loaded.nodes, "tom", "Present", scheme="bline2")
    assert (verdict.label, verdict.model_label) == ("present", None)


@pytest.mark.parametrize(
    ("reviewer", "label", "message"),
    [
        ("", "present", "type the reviewer's name first"),
        ("tom", "maybe", "'maybe' is not a bline2 label"),
    ],
)
def test_a_bad_verdict_is_a_one_line_error(headless, analysed_clip, reviewer, label, message):
    loaded, _, _ = analysed_clip
    with pytest.raises(LungUSError, match=message):
        review.clip_verdict(headless.scene, loaded.nodes, reviewer, label)


def test_a_sequence_not_read_from_a_file_cannot_be_reviewed(headless, small_frames):
    sequence = frames_to_sequence(headless.scene, small_frames, "made here", fps=10.0)
    browser, _ = create_browser(headless.scene, sequence)
    with pytest.raises(LungUSError, match="was not read from a file"):
        review.clip_verdict(headless.scene, browser, "tom", "present", scheme="bline2")


def test_the_summary_tells_the_reviewed_frames_and_the_last_verdict(headless, analysed_clip, tmp_path):
    loaded, _, _ = analysed_clip
    folder = tmp_path / "reviews"
    assert review.review_summary(headless.scene, loaded.nodes, folder).startswith("Masks: the model's")
    assert not folder.exists()  # a summary makes no folder
    under_review = review.start_mask_review(headless.scene, loaded.nodes)
    under_review.mark_reviewed(0)
    review.save_review(folder, review.clip_verdict(headless.scene, loaded.nodes, "tom"), under_review)
    summary = review.review_summary(headless.scene, loaded.nodes, folder)
    assert summary.splitlines()[0].startswith("Reviewed frames: 1 of 5")
    assert summary.splitlines()[1].startswith("Last verdict: present by tom (agreed with the model), 20")
