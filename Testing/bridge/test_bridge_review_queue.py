"""LungUSBLinesLib.review.QueueWalker and loaded_browser: a review queue CSV walked clip by clip,
and its clips found in a real MRML scene once they are open."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.io import Clip, write_clip  # noqa: E402
from lungus.review.queue import QueueEntry, write_queue_csv  # noqa: E402
from LungUSBLinesLib import review  # noqa: E402
from LungUSBLinesLib.clips import load_clip  # noqa: E402


@pytest.fixture
def queued_clips(tmp_path):
    """Three clip files and a queue CSV ranking them clip2, clip0, clip1."""
    frames = np.zeros((3, 8, 10), np.uint8)
    clips = [write_clip(Clip(frames + 50 * i, fps=10.0), tmp_path / f"clip{i}.seq.nrrd") for i in range(3)]
    entries = [
        QueueEntry(rank=rank, clip=str(clips[i]), score=score, reasons={"uncertainty": score}, model_label="present",
                   probability=0.5, patient=f"P{i}", zone="R1")
        for rank, (i, score) in enumerate([(2, 0.9), (0, 0.6), (1, 0.2)], start=1)
    ]  # fmt: skip
    return clips, write_queue_csv(entries, tmp_path / "queue.csv")


def test_the_walk_starts_at_rank_one_and_goes_in_rank_order(queued_clips):
    clips, queue_csv = queued_clips
    walker = review.QueueWalker.from_csv(queue_csv)
    assert len(walker) == 3 and walker.current.clip == str(clips[2])
    assert walker.next().clip == str(clips[0])
    assert walker.next().clip == str(clips[1])
    assert walker.where() == f"clip 3 of 3: {clips[1]} (score 0.20)"


def test_the_walk_stays_at_its_ends(queued_clips):
    clips, queue_csv = queued_clips
    walker = review.QueueWalker.from_csv(queue_csv)
    assert walker.previous() is None and walker.position == 0
    walker.next(), walker.next()
    assert walker.next() is None and walker.current.clip == str(clips[1])
    assert walker.previous().clip == str(clips[0])


def test_the_walk_goes_to_a_queued_clip_and_not_elsewhere(queued_clips, tmp_path):
    clips, queue_csv = queued_clips
    walker = review.QueueWalker.from_csv(queue_csv)
    assert walker.go_to(clips[1]).rank == 3 and walker.position == 2
    assert walker.go_to(tmp_path / "not queued.mp4") is None and walker.position == 2


def test_an_empty_queue_has_nothing_to_show():
    walker = review.QueueWalker([])
    assert walker.current is None and walker.next() is None and walker.previous() is None
    assert walker.where() == "the queue is empty"


def test_a_queued_clip_is_found_once_it_is_open(headless, queued_clips):
    clips, queue_csv = queued_clips
    walker = review.QueueWalker.from_csv(queue_csv)
    assert review.loaded_browser(headless.scene, walker.current.clip) is None
    loaded = load_clip(headless.scene, walker.current.clip)
    load_clip(headless.scene, clips[0])
    assert review.loaded_browser(headless.scene, walker.current.clip).GetID() == loaded.nodes.browser.GetID()
    assert review.loaded_browser(headless.scene, clips[1]) is None
