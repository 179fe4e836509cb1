"""lungus.progress: the one progress-callback shape, and parts of a job reporting to the whole."""

from __future__ import annotations

from lungus.progress import part_progress


def test_nested_parts_count_the_whole_job_and_say_where_they_are():
    seen = []
    folds = 4
    fold = part_progress(lambda done, total, what: seen.append((done, total, what)), 1, folds, "fold")
    seed = part_progress(fold, 0, 2, "seed")
    seed(2.5, 5, "epoch 3/5: batch 4/8")  # 2.5 of this member's 5 epochs
    assert seen == [(12.5, 40, "fold 2/4: seed 1/2: epoch 3/5: batch 4/8")]


def test_a_finished_part_ends_where_the_next_begins():
    seen = []
    seeds = part_progress(lambda done, total, what: seen.append(done / total), 0, 3, "seed")
    seeds(5, 5, "already done")
    following = part_progress(lambda done, total, what: seen.append(done / total), 1, 3, "seed")
    following(0, 5, "epoch 1/5: batch 0/8")
    assert seen == [1 / 3, 1 / 3]

