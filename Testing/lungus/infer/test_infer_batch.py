"""Batch inference: inputs, bad clips, journal and resume, shards and merging, overlays."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.infer import Analyzer, InferenceInput
from lungus.infer.batch import (
    BatchRequest,
    collect_inputs,
    merge_outputs,
    parse_shard,
    picture_stems,
    run_batch,
    shard_inputs,
)
from lungus.infer.journal import read_journal

DOCUMENTED_CLIP_COLUMNS = [
    "clip",
    "n_frames",
    "fps",
    "task",
    "pred",
    "p_absent",
    "p_present",
    "bline_count_max",
    "bline_count_mean",
    "frames_with_blines",
    "blas_max",
    "blas_mean",
    "top_frame",
    "classifier",
    "segmenter",
    "error",
]
DOCUMENTED_FRAME_COLUMNS = ["clip", "frame", "time_s", "p_blines", "bline_count", "blas"]


@pytest.fixture(scope="module")
def analyzer(tiny_models):
    return Analyzer(tiny_models["classifier"], tiny_models["segmenter"], device="cpu", runtime="torch")


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def corrupt_clips(folder, good_clip):
    """Four bad clips beside good ones: truncated, zero bytes, text with a video suffix, and a
    DICOM-suffixed file of random bytes."""
    data = good_clip.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.avi").write_text("this is a text file, not a video\n")
    (folder / "noise.dcm").write_bytes(
        np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    )
    return {"truncated.mp4", "empty.mp4", "notes.avi", "noise.dcm"}


def test_outputs_have_exactly_the_design_columns(analyzer, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"))
    with open(tmp_path / "out" / "clips.csv", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == DOCUMENTED_CLIP_COLUMNS
    with open(tmp_path / "out" / "frames.csv", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == DOCUMENTED_FRAME_COLUMNS
    rows = read_rows(tmp_path / "out" / "clips.csv")
    frames = read_rows(tmp_path / "out" / "frames.csv")
    assert len(rows) == 6 and all(row["error"] == "" for row in rows)
    assert len(frames) == sum(int(row["n_frames"]) for row in rows)
    assert rows[0]["classifier"].startswith("tiny-cls:") and rows[0]["segmenter"].startswith("tiny-seg:")


def test_bad_clips_are_listed_with_reasons_and_the_rest_are_scored(analyzer, clip_folder, tmp_path):
    bad = corrupt_clips(clip_folder, next(clip_folder.glob("*.mp4")))
    summary = run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"))
    rows = {row["clip"].split("/")[-1]: row for row in read_rows(tmp_path / "out" / "clips.csv")}
    assert len(rows) == 10
    assert {name for name, row in rows.items() if row["error"]} == bad
    assert all(row["pred"] in ("absent", "present") for name, row in rows.items() if name not in bad)
    assert "empty" in rows["empty.mp4"]["error"] and "truncated" in rows["truncated.mp4"]["error"]
    assert all("\n" not in row["error"] for row in rows.values())
    assert summary.scored == 6 and len(summary.failed) == 4 and not summary.ok
    assert "4 failed" in summary.line()


def test_folders_are_searched_by_content_and_manifests_by_their_clip_column(tiny_collection, clip_folder):
    (clip_folder / "sub").mkdir()
    moved = next(clip_folder.glob("*.mp4"))
    shutil.copy(moved, clip_folder / "sub" / "renamed_without_suffix")
    (clip_folder / "readme.txt").write_text("not a clip")
    found = collect_inputs([clip_folder])
    assert len(found) == 7 and any(item.clip.endswith("renamed_without_suffix") for item in found)
    from_manifest = collect_inputs([tiny_collection])
    assert len(from_manifest) == 16 and from_manifest[0].clip.startswith("clips/")
    assert [item.index for item in from_manifest] == list(range(16))


def test_a_clip_named_twice_is_analysed_once(clip_folder):
    first = next(clip_folder.glob("*.mp4"))
    assert len(collect_inputs([first, clip_folder])) == 6


def test_missing_inputs_are_an_error(tmp_path):
    with pytest.raises(LungUSError, match="no such file"):
        collect_inputs([tmp_path / "nowhere"])


@pytest.mark.parametrize("text", ["2/2", "a/b", "1", "-1/3", "0/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(LungUSError, match="shard"):
        parse_shard(text)


def test_a_request_refuses_negative_workers(tmp_path):
    with pytest.raises(LungUSError, match="workers must be 0 or more, got -1"):
        BatchRequest(["clips/"], tmp_path / "out", workers=-1)
    assert BatchRequest(["clips/"], str(tmp_path / "out")).out == tmp_path / "out"


def test_the_journal_keeps_each_record_whole_and_the_tables_come_from_it(tmp_path):
    from lungus.infer.journal import Journal

    journal = Journal(tmp_path, resume=False)
    for index, clip in ((1, "b.mp4"), (0, "a.mp4"), (1, "b.mp4")):
        journal.append({"index": index, "clip": clip, "error": f"try {index}", "frames": []})
    with open(tmp_path / "clips.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"index": 2, "clip": "c.mp4", "err')  # a torn line an older version left
    assert [r["clip"] for r in read_journal(tmp_path)] == ["b.mp4", "a.mp4", "b.mp4"]
    Journal(tmp_path, resume=True).append({"index": 2, "clip": "c.mp4", "frames": []})
    assert [r["clip"] for r in read_journal(tmp_path)] == ["b.mp4", "a.mp4", "b.mp4", "c.mp4"]
    assert (tmp_path / "clips.jsonl").read_text().endswith('"frames": []}\n')
    Journal(tmp_path, resume=False)
    assert (tmp_path / "clips.jsonl").read_bytes() == b""


def test_shards_partition_the_inputs(clip_folder):
    items = collect_inputs([clip_folder])
    parts = [shard_inputs(items, i, 3) for i in range(3)]
    assert sorted(item.index for part in parts for item in part) == list(range(len(items)))


def test_two_shards_merged_equal_one_run_byte_for_byte(analyzer, clip_folder, tmp_path):
    corrupt_clips(clip_folder, next(clip_folder.glob("*.mp4")))
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "single", overlays=True))
    for i in range(2):
        run_batch(analyzer, BatchRequest([clip_folder], tmp_path / f"shard{i}", shard=(i, 2), overlays=True))
    summary = merge_outputs([tmp_path / "shard1", tmp_path / "shard0"], tmp_path / "merged")
    for name in ("clips.csv", "frames.csv", "clips.jsonl"):
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
    overlays = sorted(p.name for p in (tmp_path / "single" / "overlays").iterdir())
    assert sorted(p.name for p in (tmp_path / "merged" / "overlays").iterdir()) == overlays
    assert summary.total == 10 and summary.scored == 6 and len(summary.failed) == 4 and summary.missing == 0


def test_merging_a_shard_alone_reports_the_missing_clips(analyzer, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "shard0", shard=(0, 2)))
    summary = merge_outputs([tmp_path / "shard0"], tmp_path / "merged")
    assert summary.missing == 3 and not summary.ok and "missing" in summary.line()


def test_merging_results_of_other_models_is_refused(analyzer, tiny_models, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "a", shard=(0, 2)))
    other = Analyzer(tiny_models["classifier"], device="cpu")
    run_batch(other, BatchRequest([clip_folder], tmp_path / "b", shard=(1, 2)))
    with pytest.raises(LungUSError, match="other models"):
        merge_outputs([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")


def test_resume_skips_clips_already_done_and_ends_like_one_run(analyzer, clip_folder, tmp_path):
    full = tmp_path / "full"
    run_batch(analyzer, BatchRequest([clip_folder], full))
    partial = tmp_path / "partial"
    shutil.copytree(full, partial)
    lines = (partial / "clips.jsonl").read_text().splitlines(keepends=True)
    # A run killed after two clips, in the middle of writing the third line.
    (partial / "clips.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    analysed = []
    summary = run_batch(
        analyzer,
        BatchRequest([clip_folder], partial, resume=True),
        progress=lambda done, total, clip: analysed.append(clip),
    )
    assert len(analysed) == 4 and summary.skipped == 2 and summary.scored == 6
    for name in ("clips.csv", "frames.csv", "clips.jsonl"):
        assert (partial / name).read_bytes() == (full / name).read_bytes(), name


def test_resume_cuts_a_torn_last_line_before_appending(analyzer, clip_folder, tmp_path):
    """A journal torn by an older version's killed run: the next record gets a line of its own,
    so a run killed again right after it keeps it."""
    out = tmp_path / "out"
    run_batch(analyzer, BatchRequest([clip_folder], out))
    lines = (out / "clips.jsonl").read_text().splitlines(keepends=True)
    (out / "clips.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    journals = []
    run_batch(
        analyzer,
        BatchRequest([clip_folder], out, resume=True),
        progress=lambda done, total, clip: journals.append((out / "clips.jsonl").read_text()),
    )
    assert journals[0] == "".join(lines[:3])


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_writes(analyzer, clip_folder, tmp_path):
    seen = []

    def second_run(done, total, clip):
        if done == 1:
            with pytest.raises(
                LungUSError, match=f"is in use by another lungus infer \\(pid {os.getpid()}\\)"
            ):
                run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"))
            seen.append(done)

    assert run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"), progress=second_run).ok
    assert seen == [1]
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out", resume=True))  # the lock ended with the first run


def test_resume_with_other_models_is_refused(analyzer, tiny_models, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"))
    other = Analyzer(tiny_models["classifier"], device="cpu")
    with pytest.raises(LungUSError, match="other models"):
        run_batch(other, BatchRequest([clip_folder], tmp_path / "out", resume=True))


def test_cancel_keeps_what_is_done(analyzer, clip_folder, tmp_path):
    stop = threading.Event()
    summary = run_batch(
        analyzer,
        BatchRequest([clip_folder], tmp_path / "out"),
        cancel=stop,
        progress=lambda done, total, clip: stop.set() if done == 2 else None,
    )
    assert summary.cancelled and summary.scored == 2
    assert len(read_rows(tmp_path / "out" / "clips.csv")) == 2
    resumed = run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out", resume=True))
    assert resumed.skipped == 2 and resumed.scored == 6 and resumed.ok


def test_reading_ahead_in_worker_threads_gives_the_same_results(analyzer, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "serial", workers=0))
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "threads", workers=2))
    for name in ("clips.csv", "frames.csv"):
        assert (tmp_path / "threads" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()


def test_overlays_write_a_video_and_a_mask_sequence_per_clip(analyzer, clip_folder, tmp_path):
    from lungus.io import read_clip

    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out", overlays=True, explain="gradcam"))
    record = read_journal(tmp_path / "out")[0]
    overlay = read_clip(tmp_path / "out" / record["overlay"], fan=False)
    masks = read_clip(tmp_path / "out" / record["masks"], fan=False)
    source = read_clip(record["path"], fan=False)
    assert overlay.n_frames == masks.n_frames == source.n_frames
    assert masks.frames.shape == source.frames.shape and masks.frames.max() <= 5
    assert overlay.width >= 320  # small clips are enlarged so the score text is legible
    assert (tmp_path / "out" / record["explain_png"]).stat().st_size > 0
    assert read_clip(tmp_path / "out" / record["explain_video"], fan=False).n_frames == source.n_frames


def test_mask_sequences_are_gzip_compressed(analyzer, clip_folder, tmp_path):
    from lungus.io import read_clip

    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out", overlays=True))
    record = read_journal(tmp_path / "out")[0]
    path = tmp_path / "out" / record["masks"]
    assert b"encoding: gzip\n" in path.read_bytes()[:4000]
    masks = read_clip(path, fan=False)
    assert path.stat().st_size < masks.frames.nbytes / 4


def test_pictures_take_the_clip_stem_and_only_shared_stems_take_the_input_index():
    clips = ["a/scan.mp4", "b/Scan.avi", "c/scan_1.mp4", "d/lung.seq.nrrd", "e/odd name#.dcm"]
    items = [InferenceInput(i, clip, Path("/") / clip) for i, clip in enumerate(clips)]
    # scan and Scan clash on case-insensitive file systems; scan_1 is a clip's own name, so the
    # second scan (index 1) takes scan_1_ instead.
    assert picture_stems(items) == {0: "scan_0", 1: "Scan_1_", 2: "scan_1", 3: "lung", 4: "odd_name_"}
    assert picture_stems(items[3:]) == {3: "lung", 4: "odd_name_"}


def test_clips_that_share_a_name_keep_their_pictures_apart_through_shards_and_resume(
    analyzer, clip_folder, tmp_path
):
    inputs = tmp_path / "inputs"
    first = sorted(clip_folder.glob("*.mp4"))[:2]
    for folder in ("a", "b"):
        (inputs / folder).mkdir(parents=True)
        for clip in first:
            for path in (clip, clip.with_suffix(".json")):
                if path.is_file():
                    shutil.copy(path, inputs / folder / path.name)
    request = BatchRequest([inputs / "a", inputs / "b"], tmp_path / "single", overlays=True)
    run_batch(analyzer, request)
    names = sorted(p.name for p in (tmp_path / "single" / "overlays").iterdir())
    assert names == sorted(f"{clip.stem}_{i}.mp4" for i in range(4) for clip in [first[i % 2]])
    for i in range(2):
        run_batch(analyzer, BatchRequest(request.inputs, tmp_path / f"shard{i}", overlays=True, shard=(i, 2)))
    merge_outputs([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    assert sorted(p.name for p in (tmp_path / "merged" / "overlays").iterdir()) == names
    journal = (tmp_path / "single" / "clips.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "single" / "clips.jsonl").write_text("".join(journal[:1]))  # killed after one clip
    run_batch(analyzer, BatchRequest(request.inputs, request.out, overlays=True, resume=True))
    assert (tmp_path / "single" / "clips.jsonl").read_text() == "".join(journal)
    assert (tmp_path / "merged" / "clips.jsonl").read_text() == "".join(journal)


def test_records_rank_frames_by_b_line_evidence(analyzer, clip_folder, tmp_path):
    run_batch(analyzer, BatchRequest([clip_folder], tmp_path / "out"))
    for record in read_journal(tmp_path / "out"):
        ranked = [entry["p_blines"] for entry in record["top_frames"]]
        assert ranked == sorted(ranked, reverse=True) and len(ranked) == 5
        best = max(frame["p_blines"] for frame in record["frames"])
        assert ranked[0] == best


def test_no_dicom_patient_identifiers_reach_the_outputs(
    analyzer, tmp_path, write_test_dicom, make_fan_frames
):
    frames, _ = make_fan_frames("convex", n_frames=6)
    (tmp_path / "in").mkdir()
    clip = write_test_dicom(
        tmp_path / "in" / "patient.dcm", frames, patient_name="Doe^Jane", patient_id="PID-12345"
    )
    run_batch(analyzer, BatchRequest([clip], tmp_path / "out", overlays=True))
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Doe^Jane" not in data and b"PID-12345" not in data and b"19700101" not in data, path
    assert json.loads((tmp_path / "out" / "clips.jsonl").read_text().splitlines()[0])["error"] == ""
