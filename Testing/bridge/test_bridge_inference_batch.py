"""LungUSInferenceLib: a real `lungus infer` subprocess driven as the panel drives it, and the
Python-console API."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.infer.results import clip_columns  # noqa: E402
from LungUSBLinesLib.processes import JobProgress  # noqa: E402
from LungUSBLinesLib.results import find_analysis  # noqa: E402
from LungUSBLinesLib.tables import table_columns, table_records  # noqa: E402
from LungUSInferenceLib import batch, console  # noqa: E402


@pytest.fixture
def clip_folder(tmp_path, tiny_clip_paths):
    """Two simulated clips (with their fan sidecars) and a truncated one."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for path in tiny_clip_paths[:2]:
        shutil.copy(path, folder / path.name)
        shutil.copy(path.with_suffix(".json"), folder / path.with_suffix(".json").name)
    data = tiny_clip_paths[2].read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return folder


def test_command_runs_lungus_infer_with_progress_lines(tiny_models, clip_folder, tmp_path):
    request = batch.BatchRequest(
        inputs=[str(clip_folder)],
        out=str(tmp_path / "out"),
        model=str(tiny_models["classifier"]),
        device="cpu",
        explain=True,
        workers=0,
    )
    command = request.command("/opt/PythonSlicer")
    assert command[:5] == ["/opt/PythonSlicer", "-m", "lungus", "infer", str(clip_folder)]
    assert command[command.index("--model") + 1] == str(tiny_models["classifier"])
    assert "--progress-lines" in command and "--explain" in command and "--segmenter" not in command
    assert command[command.index("--workers") + 1] == "0"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"inputs": []}, "no inputs"),
        ({"inputs": ["/no/such/folder"]}, "no such file or folder"),
        ({"model": None}, "choose a classifier model file"),
        ({"model": "/no/such/model.pt"}, "no such model file"),
        ({"device": "gpu"}, "device must be one of"),
        ({"model": None, "segmenter": "SEG", "explain": True}, "need a classifier"),
    ],
)
def test_bad_requests_are_refused_before_starting(tiny_models, clip_folder, tmp_path, change, message):
    values = {
        "inputs": [str(clip_folder)],
        "out": str(tmp_path / "out"),
        "model": str(tiny_models["classifier"]),
    }
    values.update(change)
    if values.get("segmenter") == "SEG":
        values["segmenter"] = str(tiny_models["segmenter"])
    with pytest.raises(LungUSError, match=message):
        batch.BatchRequest(**values).validate()


def test_progress_lines_parse():
    assert batch.parse_progress_line("progress 3/20 /data/clips/zone 2.mp4") == JobProgress(
        0.15, "3 of 20 clips: zone 2.mp4"
    )
    assert batch.parse_progress_line("scored 20 of 20 clips; 4.1 s") is None


def test_a_batch_subprocess_scores_clips_and_lists_the_bad_one(
    headless, tiny_models, clip_folder, tmp_path
):
    out = tmp_path / "out"
    request = batch.BatchRequest(
        inputs=[str(clip_folder)],
        out=str(out),
        model=str(tiny_models["classifier"]),
        segmenter=str(tiny_models["segmenter"]),
        device="cpu",
        threads=1,
        workers=0,
    )
    job = batch.start_batch(request, python=sys.executable)
    assert job.wait(timeout=300) == 1  # one clip failed; the run went on
    assert job.progress.fraction == 1.0 and job.progress.message.startswith("3 of 3 clips")
    assert job.last_line().startswith("scored 2 of 3 clips; 1 failed")

    results = batch.load_batch_results(headless.scene, out)
    assert results.n_clips == 3 and results.n_scored == 2
    [(clip, error)] = results.failed
    assert clip.endswith("truncated.mp4") and error
    assert table_columns(results.table) == clip_columns(["absent", "present"])
    predictions = {Path(r["clip"]).name: r["pred"] for r in table_records(results.table)}
    assert predictions.pop("truncated.mp4") is None
    assert set(predictions.values()) <= {"absent", "present"} and len(predictions) == 2
    assert "1 failed:\n  truncated.mp4: " in results.describe()


def test_only_a_fresh_clips_csv_counts_as_written(tmp_path):
    assert not batch.results_written(tmp_path)
    (tmp_path / "clips.csv").write_text("clip,error\n")
    os.utime(tmp_path / "clips.csv", (1_000_000, 1_000_000))  # an earlier run's file
    assert batch.results_written(tmp_path) and not batch.results_written(tmp_path, since=time.time())


def test_results_of_a_run_that_wrote_nothing_are_an_error(headless, tmp_path):
    with pytest.raises(LungUSError, match="no clips.csv"):
        batch.load_batch_results(headless.scene, tmp_path)


def test_console_analyse_a_file(tiny_models, tiny_clip_paths):
    result = console.analyse(
        tiny_clip_paths[0], tiny_models["classifier"], segmenter=tiny_models["segmenter"], device="cpu"
    )
    assert result.n_frames == 8 and result.pred in ("absent", "present") and result.bline_count is not None


def test_console_analyse_into_scene_records_the_results(headless, tiny_models, tiny_clip_paths):
    loaded, nodes = console.analyse_into_scene(
        headless.scene, tiny_clip_paths[0], tiny_models["classifier"], device="cpu", explain="gradcam"
    )
    assert (
        find_analysis(headless.scene, loaded.nodes.browser).scores_table.GetID() == nodes.scores_table.GetID()
    )
    assert nodes.heatmap_sequence is not None and nodes.mask_sequence is None


def test_console_run_batch_in_process(tiny_models, clip_folder, tmp_path):
    done = []
    summary = console.run_batch(
        clip_folder,
        tiny_models["classifier"],
        tmp_path / "out",
        device="cpu",
        progress=lambda d, t, clip: done.append((d, t)),
    )
    assert summary.scored == 2 and len(summary.failed) == 1 and done[-1] == (3, 3)
    assert (tmp_path / "out" / "clips.csv").is_file()
