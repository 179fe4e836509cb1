"""The review study at a tiny size: the files and fields it writes, not its outcome
(the outcome at the default size is in docs/review.md#does-the-queue-help)."""

from __future__ import annotations

import json

import pytest

from lungus.errors import LungUSError
from lungus.review.queue import read_queue_csv
from lungus.studies.review_loop import ARMS, ReviewStudyConfig, run_review_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("study") / "out"
    run_review_study(out, ReviewStudyConfig.tiny(), log=lambda _m: None, command="lungus review-study --out out")
    return out


def test_the_summary_holds_every_arm_of_both_loops(study):
    summary = json.loads((study / "summary.json").read_text())
    (seed,) = summary["seeds"]
    for arm in ARMS:
        assert 0.0 <= seed["classifier"][arm]["auc"] <= 1.0 or seed["classifier"][arm]["auc"] is None
        assert "dice_b_line" in seed["segmenter"][arm]
    classifier = seed["classifier"]
    assert classifier["reviewed_clips"] == round(0.2 * classifier["pool_clips"])
    assert set(classifier["wrong_labels_reviewed"]) == {"ranked", "random"}
    assert max(classifier["wrong_labels_reviewed"].values()) <= classifier["wrong_labels"]
    assert {"auc_diff", "auc_diff_ci", "p_value"} == set(classifier["ranked_minus_random"])
    assert max(seed["segmenter"]["corrupted_masks_reviewed"].values()) <= seed["segmenter"]["corrupted_masks"]
    assert set(summary["mean"]) == {"classifier", "segmenter"}


def test_the_queues_rank_every_pool_clip(study):
    for name in ("queue_classifier.csv", "queue_segmenter.csv"):
        entries = read_queue_csv(study / "seed0" / name)
        assert len(entries) == ReviewStudyConfig.tiny().clips
    assert "crowd_model_disagreement" in read_queue_csv(study / "seed0" / "queue_classifier.csv")[0].reasons
    assert "mask_model_disagreement" in read_queue_csv(study / "seed0" / "queue_segmenter.csv")[0].reasons


def test_the_report_links_its_figure_and_names_its_command(study):
    report = (study / "report.md").read_text()
    assert "review_loop.png" in report and (study / "review_loop.png").stat().st_size > 0
    assert "`lungus review-study --out out`" in report


def test_the_reviews_go_through_review_folders_into_the_retraining_manifests(study):
    from lungus.data.manifests.label_sources import labels_of
    from lungus.data.manifests.manifest import Manifest
    from lungus.review.store import ReviewFolder

    reviewed_count = round(0.2 * ReviewStudyConfig.tiny().clips)
    reviews = ReviewFolder(study / "seed0" / "reviews" / "classifier_ranked")
    assert len(reviews.history()) == reviewed_count and {v.reviewer for v in reviews.history()} == {"simulator"}
    ranked = Manifest.load(study / "seed0" / "pool_classifier_ranked.csv")
    reviewed = labels_of(ranked, "expert:reviewed", "bline2").names()
    noisy, truth = labels_of(ranked, "expert:noisy", "bline2").names(), labels_of(ranked, "truth", "bline2").names()
    changed = [r for r in range(len(ranked)) if reviewed[r] != noisy[r]]
    assert all(reviewed[r] == truth[r] for r in changed) and len(changed) <= reviewed_count

    masks = ReviewFolder(study / "seed0" / "reviews" / "segmenter_ranked").corrected_masks()
    assert len(masks) == reviewed_count
    segmenter_pool = Manifest.load(study / "seed0" / "pool_segmenter_ranked.csv")
    in_reviews = [r for r in range(len(segmenter_pool)) if "reviews" in segmenter_pool.rows[r]["mask"]]
    assert len(in_reviews) == reviewed_count


def test_a_folder_holding_a_study_is_not_overwritten_unasked(study):
    with pytest.raises(LungUSError, match="--overwrite"):
        run_review_study(study, ReviewStudyConfig.tiny(), log=lambda _m: None)


@pytest.mark.parametrize("change, problem", [({"folds": 1}, "folds"), ({"review_share": 1.0}, "review_share"),
                                             ({"task": "lus4"}, "task")])
def test_bad_study_settings_are_refused(change, problem):
    with pytest.raises(LungUSError, match=problem):
        ReviewStudyConfig(**{**ReviewStudyConfig.tiny().__dict__, **change})
