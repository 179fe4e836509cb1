"""End to end: `lungus infer` over simulated clips, some corrupted; shards, merge, resume, torchrun."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest

torch.set_num_threads(1)
CORRUPT = {
    "truncated.mp4": "truncated",
    "empty.mp4": "empty",
    "wrong.avi": "not a video",
    "noise.dcm": "DICOM",
}


@pytest.fixture(scope="module")
def models(tiny_models):
    return tiny_models["classifier"], tiny_models["segmenter"]


@pytest.fixture
def batch_folder(tmp_path, tiny_collection):
    """The 16 simulated clips (with fan sidecars) and 4 corrupted files: 20 inputs."""
    folder = tmp_path / "batch"
    shutil.copytree(Manifest.load(tiny_collection).folder / "clips", folder)
    data = next(folder.glob("*.mp4")).read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "wrong.avi").write_text("a text file with a video suffix\n")
    (folder / "noise.dcm").write_bytes(
        np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    )
    return folder


def infer(folder, out, models, *extra):
    cls, seg = models
    return main(
        [
            "infer",
            str(folder),
            "--model",
            str(cls),
            "--segmenter",
            str(seg),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--runtime",
            "torch",
            "--quiet",
            *extra,
        ]
    )


def rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_batch_with_corrupted_clips_scores_the_rest_and_lists_the_bad_ones(
    batch_folder, tmp_path, models, capsys
):
    status = infer(batch_folder, tmp_path / "out", models, "--workers", "2")
    printed = capsys.readouterr().out
    assert status == 1
    assert "scored 16 of 20 clips; 4 failed" in printed
    table = rows(tmp_path / "out" / "clips.csv")
    assert len(table) == 20
    failed = {os.path.basename(row["clip"]): row["error"] for row in table if row["error"]}
    assert set(failed) == set(CORRUPT)
    for name, reason in CORRUPT.items():
        assert reason.lower() in failed[name].lower(), (name, failed[name])
    scored = [row for row in table if not row["error"]]
    assert all(row["pred"] in ("absent", "present") and row["bline_count_max"] != "" for row in scored)
    assert len(rows(tmp_path / "out" / "frames.csv")) == sum(int(row["n_frames"]) for row in scored)


def test_all_good_clips_exit_zero(tiny_collection, tmp_path, models, capsys):
    assert infer(tiny_collection, tmp_path / "out", models) == 0
    assert "scored 16 of 16 clips" in capsys.readouterr().out


def test_shards_merged_on_the_command_line_equal_one_run(batch_folder, tmp_path, models, capsys):
    infer(batch_folder, tmp_path / "single", models)
    infer(batch_folder, tmp_path / "s0", models, "--shard", "0/2")
    infer(batch_folder, tmp_path / "s1", models, "--shard", "1/2")
    assert len(rows(tmp_path / "s0" / "clips.csv")) == 10
    status = main(
        ["infer", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]
    )
    assert status == 1  # the corrupted clips are still failures after merging
    assert "merged 2 folders" in capsys.readouterr().out
    for name in ("clips.csv", "frames.csv", "clips.jsonl"):
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name


def test_resume_does_nothing_twice(tiny_collection, tmp_path, models, capsys):
    infer(tiny_collection, tmp_path / "out", models)
    before = (tmp_path / "out" / "clips.csv").read_bytes()
    capsys.readouterr()
    assert infer(tiny_collection, tmp_path / "out", models, "--resume") == 0
    assert "(16 already done)" in capsys.readouterr().out
    assert (tmp_path / "out" / "clips.csv").read_bytes() == before


def test_bad_arguments_exit_2_with_one_line(tmp_path, models, capsys):
    assert infer(tmp_path / "missing", tmp_path / "out", models) == 2
    error = capsys.readouterr().err.strip()
    assert "missing: no such file or folder" in error and "\n" not in error
    assert main(["infer", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert infer(tmp_path, tmp_path / "out", models, "--shard", "3/2") == 2


def test_ranks_take_shards_and_rank_0_merges(tiny_collection, tmp_path, models, monkeypatch, capsys):
    """The torchrun code path in one process: rank 1 finishes first, then rank 0 merges."""
    infer(tiny_collection, tmp_path / "single", models)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        assert infer(tiny_collection, tmp_path / "ranks", models) == 0
    assert "merged 2 ranks: scored 16 of 16 clips" in capsys.readouterr().out
    for name in ("clips.csv", "frames.csv", "clips.jsonl"):
        assert (tmp_path / "ranks" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
    assert not (tmp_path / "ranks" / ".ranks").exists()


@pytest.mark.slow
def test_torchrun_ranks_merge_into_what_one_process_writes(tiny_collection, tmp_path, models):
    """Two CPU ranks under a real torchrun, each a shard; rank 0 merges. Same bytes as one process."""
    cls, seg = models
    infer(tiny_collection, tmp_path / "single", models)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lungus",
        "infer",
        str(tiny_collection),
        "--model",
        str(cls),
        "--segmenter",
        str(seg),
        "--out",
        str(tmp_path / "ranks"),
        "--device",
        "cpu",
        "--runtime",
        "torch",
        "--threads",
        "1",
        "--workers",
        "0",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "merged 2 ranks: scored 16 of 16 clips" in done.stdout
    for name in ("clips.csv", "frames.csv", "clips.jsonl"):
        assert (tmp_path / "ranks" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
    assert not (tmp_path / "ranks" / ".ranks").exists()


def test_overlays_and_explanations_from_the_command_line(tiny_collection, tmp_path, models, capsys):
    clip = Manifest.load(tiny_collection).clip_paths()[0]
    assert infer(clip, tmp_path / "out", models, "--overlays", "--explain") == 0
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*"))
    stem = clip.stem  # as the help says: overlays/<clip>.mp4
    for name in (
        f"overlays/{stem}.mp4",
        f"masks/{stem}.seq.nrrd",
        f"explain/{stem}.gradcam.mp4",
        f"explain/{stem}.gradcam.png",
    ):
        assert name in written


# ------------------------------------------------------------------------------ a full disk, two runs

#: `lungus` in a process whose files may not grow past argv[1] bytes (RLIMIT_FSIZE): a write past
#: it fails with EFBIG, as on a full disk, with no mount or root needed.
FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process at the limit
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from lungus.cli import main
sys.exit(main(sys.argv[2:]))
"""


def infer_command(folder, out, models, *extra):
    """The arguments of `lungus infer`; models: (classifier, segmenter or None)."""
    cls, seg = models
    return [
        "infer",
        str(folder),
        "--model",
        str(cls),
        *(["--segmenter", str(seg)] if seg else []),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--runtime",
        "torch",
        "--quiet",
        "--workers",
        "0",
        *extra,
    ]


def run_lungus(arguments, limit=None):
    """`lungus ARGUMENTS` in a new process (under a file-size limit when given)."""
    prefix = (
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(limit)] if limit else [sys.executable, "-m", "lungus"]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, *arguments], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def four_clips(tmp_path, tiny_clip_paths):
    folder = tmp_path / "clips"
    folder.mkdir()
    for path in tiny_clip_paths[:4]:
        shutil.copy(path, folder / path.name)
    return folder


def output_files(folder):
    """relative path -> bytes of every file a run left (the lock file aside; without the
    time pynrrd writes into a .nrrd header)."""
    return {
        path.relative_to(folder).as_posix(): re.sub(
            rb"\n# on [^\n]*\(GMT\)\.\n", b"\n", path.read_bytes(), count=1
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lungus-infer.lock"
    }


def assert_one_line_full_disk_error(done, name):
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip()
    assert "\n" not in error and "Traceback" not in error, error
    assert error.startswith("lungus infer: error: no space left on the device")
    assert f"{name}: free space and run again with --resume" in error


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_while_appending_to_the_journal_leaves_whole_lines_and_resume_completes(
    four_clips, tmp_path, models
):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run_lungus(infer_command(four_clips, full, models)).returncode == 0
    lines = (full / "clips.jsonl").read_bytes().splitlines(keepends=True)
    # Room for two journal lines and half of the third (and for run.json): the third append fails.
    limit = len(lines[0]) + len(lines[1]) + len(lines[2]) // 2
    assert limit > len((full / "run.json").read_bytes())
    done = run_lungus(infer_command(four_clips, cut, models), limit=limit)
    assert_one_line_full_disk_error(done, "clips.jsonl")
    assert (cut / "clips.jsonl").read_bytes() == lines[0] + lines[1]  # no half line
    assert [p.name for p in cut.iterdir() if p.name.startswith(".") and p.name != ".lungus-infer.lock"] == []
    assert run_lungus(infer_command(four_clips, cut, models, "--resume")).returncode == 0
    assert output_files(cut) == output_files(full)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_while_writing_an_overlay_video_leaves_no_partial_file_and_resume_completes(
    four_clips, tmp_path, models
):
    """OpenCV's video writer drops write errors: the video must still not appear truncated."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    classifier_only = (models[0], None)  # overlay videos and no mask files: the videos are the largest files
    assert run_lungus(infer_command(four_clips, full, classifier_only, "--overlays")).returncode == 0
    pictures = {name: data for name, data in output_files(full).items() if "/" in name}
    # The largest video no longer fits: its clip stops the run, the smaller ones before it are written.
    largest = max(pictures, key=lambda name: len(pictures[name]))
    assert largest.startswith("overlays/") and len(pictures[largest]) > len(
        (full / "clips.jsonl").read_bytes()
    )
    done = run_lungus(
        infer_command(four_clips, cut, classifier_only, "--overlays"), limit=len(pictures[largest]) - 1
    )
    assert_one_line_full_disk_error(done, largest)
    left = output_files(cut)
    assert largest not in left
    for name, data in left.items():
        assert "/" not in name or data == pictures[name], f"{name} is not the complete picture"
    assert all(line.endswith(b"\n") for line in (cut / "clips.jsonl").read_bytes().splitlines(keepends=True))
    assert not [p for p in cut.rglob(".*") if p.name != ".lungus-infer.lock"]  # no temporary files
    assert (
        run_lungus(infer_command(four_clips, cut, classifier_only, "--overlays", "--resume")).returncode == 0
    )
    assert output_files(cut) == output_files(full)


HOLD_THE_FOLDER = """
import sys
from lungus.folder_lock import exclusive_folder
from lungus.infer.batch import LOCK
with exclusive_folder(sys.argv[1], "lungus infer", LOCK):
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def test_a_second_run_on_the_same_out_stops_at_once_and_a_crash_leaves_no_stale_lock(
    four_clips, tmp_path, models
):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        done = run_lungus(infer_command(four_clips, out, models))
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"lungus infer: error: {out} is in use by another lungus infer (pid {holder.pid}); "
            "wait for it or choose another --out"
        )
        assert not (out / "clips.csv").exists()
    finally:
        holder.kill()  # a crash: the operating system drops the lock with the process
        holder.wait()
    assert run_lungus(infer_command(four_clips, out, models)).returncode == 0
    assert len(rows(out / "clips.csv")) == 4


def test_a_model_trained_on_simulated_clips_says_so(tiny_clip_paths, tmp_path, simulated_classifier, capsys):
    import json

    out = tmp_path / "out"
    assert main(["infer", str(tiny_clip_paths[0]), "--model", str(simulated_classifier), "--out", str(out),
                 "--device", "cpu", "--runtime", "torch", "--quiet"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "classifier tiny-cls was trained on simulated clips" in warnings[0]
    assert json.loads((out / "run.json").read_text())["warnings"] == warnings


def test_an_untrained_or_real_data_model_has_no_warning(tiny_clip_paths, tmp_path, models, capsys):
    import json

    assert infer(tiny_clip_paths[0], tmp_path / "out", models) == 0
    assert "warning:" not in capsys.readouterr().err
    assert "warnings" not in json.loads((tmp_path / "out" / "run.json").read_text())
