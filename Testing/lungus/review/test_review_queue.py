"""lungus.review.queue: each signal, the score, the ranking and the queue CSV (docs/review.md#review-queue)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.io import Clip, write_clip
from lungus.review.queue import (
    QUEUE_COLUMNS,
    QueueConfig,
    QueueWeights,
    read_queue_csv,
    review_queue,
    write_queue_csv,
)


def by_name(entries):
    return {entry.clip.rsplit("/", 1)[-1]: entry for entry in entries}


# ---------------------------------------------------------------------------------------- signals


def test_uncertainty_ranks_the_clip_nearest_the_threshold_first(write_results):
    results = write_results("run", {"sure.mp4": [0.01, 0.99], "near.mp4": [0.5, 0.5], "leaning.mp4": [0.3, 0.7]})
    entries = review_queue([results])
    assert [e.clip.rsplit("/", 1)[-1] for e in entries] == ["near.mp4", "leaning.mp4", "sure.mp4"]
    values = {name: e.reasons["uncertainty"] for name, e in by_name(entries).items()}
    assert values == pytest.approx({"near.mp4": 1.0, "leaning.mp4": 0.6, "sure.mp4": 0.02})
    assert [e.rank for e in entries] == [1, 2, 3]


def test_the_threshold_moves_the_boundary_and_the_model_label(write_results):
    results = write_results("run", {"a.mp4": [0.2, 0.8], "b.mp4": [0.6, 0.4]})
    entries = by_name(review_queue([results], config=QueueConfig(threshold=0.8)))
    assert entries["a.mp4"].reasons["uncertainty"] == pytest.approx(1.0)
    assert (entries["a.mp4"].model_label, entries["a.mp4"].probability) == ("present", pytest.approx(0.8))
    assert entries["b.mp4"].reasons["uncertainty"] == pytest.approx(1 - 0.4 / 0.8)
    assert entries["b.mp4"].model_label == "absent"


def test_three_classes_use_the_margin_of_the_two_likeliest(write_results):
    results = write_results("run", {"a.mp4": [0.4, 0.35, 0.25]}, task="bline3")
    entry = review_queue([results])[0]
    assert entry.reasons["uncertainty"] == pytest.approx(0.95)
    assert entry.model_label == "none"


def test_two_results_that_disagree_give_the_normalised_mutual_information(write_results):
    first = write_results("fold0", {"split.mp4": [0.9, 0.1], "agreed.mp4": [0.5, 0.5]})
    second = write_results("fold1", {"split.mp4": [0.1, 0.9], "agreed.mp4": [0.5, 0.5]})
    entries = by_name(review_queue([first, second]))
    entropy = lambda p: -sum(x * math.log(x) for x in p)  # noqa: E731
    expected = (entropy([0.5, 0.5]) - entropy([0.9, 0.1])) / math.log(2)
    assert entries["split.mp4"].reasons["member_disagreement"] == pytest.approx(expected)
    assert entries["agreed.mp4"].reasons["member_disagreement"] == pytest.approx(0.0, abs=1e-9)
    # the members' mean is what the uncertainty and the label come from
    assert entries["split.mp4"].reasons["uncertainty"] == pytest.approx(1.0)


def test_one_folder_given_twice_is_one_member(write_results):
    results = write_results("run", {"a.mp4": [0.9, 0.1]})
    entry = review_queue([results, results / "clips.jsonl"])[0]
    assert "member_disagreement" not in entry.reasons


def test_present_without_blines_disagrees_with_the_segmenter(write_results):
    results = write_results("run", {
        "present_empty.mp4": ([0.05, 0.95], [False] * 10),
        "present_full.mp4": ([0.05, 0.95], [True] * 10),
        "absent_some.mp4": ([0.9, 0.1], [True] * 2 + [False] * 8),  # 20 % of frames: 2/3 of "discrete"
    })
    entries = by_name(review_queue([results]))
    assert entries["present_empty.mp4"].reasons["classifier_segmenter_disagreement"] == pytest.approx(0.95)
    assert entries["present_full.mp4"].reasons["classifier_segmenter_disagreement"] == pytest.approx(0.05)
    assert entries["absent_some.mp4"].reasons["classifier_segmenter_disagreement"] == pytest.approx(0.2 / 0.3 - 0.1)


def test_crowd_disagreement_patient_and_zone_come_from_the_manifest(write_results, tmp_path):
    results = write_results("run", {"a.mp4": [0.1, 0.9], "b.mp4": [0.1, 0.9]})
    Manifest.from_rows(tmp_path / "manifest.csv", [
        {"clip": "clips/a.mp4", "patient": "P1", "zone": "R1", "crowd_none": 8, "crowd_discrete": 2, "crowd_confluent": 0},
        {"clip": "clips/b.mp4", "patient": "P2", "zone": "L2", "crowd_none": 0, "crowd_discrete": 5, "crowd_confluent": 5},
    ]).save()
    entries = by_name(review_queue([results], manifest=tmp_path / "manifest.csv"))
    # crowd-soft in bline2: a is (0.8 absent, 0.2 present) against the model's (0.1, 0.9)
    assert entries["a.mp4"].reasons["crowd_model_disagreement"] == pytest.approx(0.7)
    assert entries["b.mp4"].reasons["crowd_model_disagreement"] == pytest.approx(0.1)
    assert (entries["a.mp4"].patient, entries["a.mp4"].zone) == ("P1", "R1")
    assert entries["a.mp4"].rank == 1


def test_contradicted_labels_come_first_the_most_confidently_contradicted_first(write_results, tmp_path):
    # names in path order opposite to the expected ranks, so a tie broken by path would fail
    results = write_results("run", {"a_unsure_agreeing.mp4": [0.55, 0.45], "b_unsure_contradicting.mp4": [0.4, 0.6],
                                    "c_sure_contradicting.mp4": [0.05, 0.95]})
    Manifest.from_rows(tmp_path / "m.csv", [{"clip": f"clips/{name}", "patient": name[0], "expert_noisy": "none"}
                                            for name in ("a_unsure_agreeing.mp4", "b_unsure_contradicting.mp4",
                                                         "c_sure_contradicting.mp4")]).save()
    entries = review_queue([results], manifest=tmp_path / "m.csv", config=QueueConfig(label_source="expert:noisy"))
    assert [e.clip.rsplit("/", 1)[-1][0] for e in entries] == ["c", "b", "a"]
    assert entries[0].score > entries[1].score > entries[2].score


def test_a_hard_label_column_is_a_reference_too(write_results, tmp_path):
    results = write_results("run", {"a.mp4": [0.3, 0.7]})
    Manifest.from_rows(tmp_path / "m.csv", [{"clip": "clips/a.mp4", "patient": "P1", "expert_noisy": "none"}]).save()
    entry = review_queue([results], manifest=tmp_path / "m.csv", config=QueueConfig(label_source="expert:noisy"))[0]
    assert entry.reasons["crowd_model_disagreement"] == pytest.approx(0.7)


def _bline_masks(n_frames: int, with_blines: set[int], ignored: set[int] = frozenset()) -> np.ndarray:
    masks = np.zeros((n_frames, 64, 64), np.uint8)
    masks[:, 10:12, 8:56] = 1  # the pleural line
    for t in with_blines:
        masks[t, 12:60, 28:34] = 3  # a B-line from the pleura down
    for t in ignored:
        masks[t] = 255
    return masks


def test_mask_disagreement_is_the_share_of_frames_where_mask_and_segmenter_differ(write_results, tmp_path):
    from lungus.data.labels.blines import count_blines

    masks = _bline_masks(4, with_blines={0, 1})
    assert [count_blines(m) for m in masks] == [1, 1, 0, 0]
    write_clip(Clip(masks, fps=10.0), tmp_path / "a.seq.nrrd")
    results = write_results("run", {"a.mp4": ([0.5, 0.5], [False, True, True, False]),
                                    "b.mp4": ([0.5, 0.5], [True, True, False, False])})
    Manifest.from_rows(tmp_path / "m.csv", [{"clip": "clips/a.mp4", "patient": "P1", "mask": "a.seq.nrrd"},
                                            {"clip": "clips/b.mp4", "patient": "P2", "mask": "a.seq.nrrd"}]).save()
    entries = by_name(review_queue([results], manifest=tmp_path / "m.csv"))
    assert entries["a.mp4"].reasons["mask_model_disagreement"] == pytest.approx(0.5)  # frames 0 and 2
    assert entries["b.mp4"].reasons["mask_model_disagreement"] == pytest.approx(0.0)


def test_frames_nobody_annotated_leave_the_mask_disagreement(write_results, tmp_path):
    masks = _bline_masks(4, with_blines={0, 1})
    masks[2:] = 255  # frames 2 and 3 not reviewed (lungus.data.labels.annotation_labels.IGNORE_INDEX)
    write_clip(Clip(masks, fps=10.0), tmp_path / "a.seq.nrrd")
    results = write_results("run", {"a.mp4": ([0.5, 0.5], [True, False, True, True])})
    Manifest.from_rows(tmp_path / "m.csv", [{"clip": "clips/a.mp4", "patient": "P1", "mask": "a.seq.nrrd"}]).save()
    entry = review_queue([results], manifest=tmp_path / "m.csv")[0]
    assert entry.reasons["mask_model_disagreement"] == pytest.approx(0.5)  # frame 1 of frames 0, 1


# ---------------------------------------------------------------------------------------- the score


def test_the_score_is_the_weighted_mean_of_the_signals_a_clip_has(write_results):
    results = write_results("run", {"a.mp4": ([0.3, 0.7], [False] * 5), "b.mp4": [0.3, 0.7]})
    weights = QueueWeights(uncertainty=1.0, classifier_segmenter_disagreement=3.0)
    entries = by_name(review_queue([results], config=QueueConfig(weights=weights)))
    a = entries["a.mp4"].reasons
    assert entries["a.mp4"].score == pytest.approx((a["uncertainty"] + 3 * a["classifier_segmenter_disagreement"]) / 4)
    assert entries["b.mp4"].score == pytest.approx(entries["b.mp4"].reasons["uncertainty"])


def test_a_zero_weight_leaves_the_signal_out_of_the_score_but_in_the_reasons(write_results):
    results = write_results("run", {"a.mp4": ([0.3, 0.7], [False] * 5)})
    weights = QueueWeights(classifier_segmenter_disagreement=0.0)
    entry = review_queue([results], config=QueueConfig(weights=weights))[0]
    assert entry.score == pytest.approx(entry.reasons["uncertainty"])
    assert entry.reasons["classifier_segmenter_disagreement"] == pytest.approx(0.7)


@pytest.mark.parametrize("settings, problem", [
    (["uncertainty=-1"], ">= 0"),
    (["uncertainty=nan"], ">= 0"),
    (["loudness=2"], "one of uncertainty"),
    (["uncertainty"], "NAME=VALUE"),
    (["uncertainty=lots"], "not a number"),
    ([f"{name}=0" for name in QueueWeights.__dataclass_fields__], "at least one"),
])
def test_bad_weights_are_refused_in_one_line(settings, problem):
    with pytest.raises(LungUSError, match=problem):
        QueueWeights.parse(settings)


def test_a_threshold_outside_zero_one_is_refused():
    with pytest.raises(LungUSError, match="threshold"):
        QueueConfig(threshold=1.0)


def test_top_keeps_the_first_entries(write_results):
    results = write_results("run", {f"c{i}.mp4": [i / 10, 1 - i / 10] for i in range(6)})
    entries = review_queue([results], top=2)
    assert [e.rank for e in entries] == [1, 2]
    assert entries[0].score >= entries[1].score


def test_clips_that_failed_are_left_out(write_results):
    results = write_results("run", {"a.mp4": [0.5, 0.5]}, errors=["broken.mp4"])
    assert [e.clip.rsplit("/", 1)[-1] for e in review_queue([results])] == ["a.mp4"]


# ---------------------------------------------------------------------------------------- bad input


def test_a_folder_without_results_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LungUSError, match="not a lungus infer output folder"):
        review_queue([tmp_path / "empty"])
    with pytest.raises(LungUSError, match="no such results folder"):
        review_queue([tmp_path / "missing"])


def test_results_of_two_tasks_are_refused_naming_the_second(write_results):
    first = write_results("two", {"a.mp4": [0.5, 0.5]})
    second = write_results("three", {"a.mp4": [0.4, 0.3, 0.3]}, task="bline3")
    with pytest.raises(LungUSError, match="three.*one task"):
        review_queue([first, second])


def test_a_folder_of_failed_clips_only_is_refused(write_results):
    results = write_results("run", {}, errors=["broken.mp4"])
    with pytest.raises(LungUSError, match="no scored clip"):
        review_queue([results])


# ---------------------------------------------------------------------------------------- the CSV


def test_the_queue_csv_reads_back_equal(write_results, tmp_path):
    results = write_results("run", {"a.mp4": ([0.3, 0.7], [False] * 5), "b.mp4": [0.5, 0.5]})
    entries = review_queue([results])
    path = write_queue_csv(entries, tmp_path / "queue.csv")
    assert path.read_text().splitlines()[0] == ",".join(QUEUE_COLUMNS)
    back = read_queue_csv(path)
    assert [(e.rank, e.clip, e.model_label, e.patient) for e in back] == [
        (e.rank, e.clip, e.model_label, e.patient) for e in entries]
    for read, written in zip(back, entries):
        assert read.score == pytest.approx(written.score, abs=1e-6)
        assert read.reasons == pytest.approx(written.reasons, abs=1e-6)


def test_a_relative_clip_in_a_queue_csv_is_taken_from_its_folder(tmp_path):
    (tmp_path / "queue.csv").write_text("rank,clip,score\n1,clips/a.mp4,0.5\n")
    assert read_queue_csv(tmp_path / "queue.csv")[0].clip == str(tmp_path.resolve() / "clips" / "a.mp4")


@pytest.mark.parametrize("text, problem", [
    ("clip,score\na.mp4,1\n", "missing column rank"),
    ("rank,clip,score\nfirst,a.mp4,1\n", "line 2: column rank"),
    ("rank,clip,score\n1,a.mp4,high\n", "line 2: column score"),
    ("rank,clip,score,uncertainty\n1,a.mp4,1,x\n", "line 2: column uncertainty"),
    ("rank,clip,score\n1,,1\n", "blank clip"),
])
def test_a_bad_queue_csv_is_refused_naming_the_line(tmp_path, text, problem):
    (tmp_path / "queue.csv").write_text(text)
    with pytest.raises(LungUSError, match=problem):
        read_queue_csv(tmp_path / "queue.csv")
