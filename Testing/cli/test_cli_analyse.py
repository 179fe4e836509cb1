"""`lungus analyse`: one clip's full analysis into a file, with machine-readable progress."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lungus.cli import main
from lungus.infer import Analyzer
from lungus.infer.results import read_analysis_file

torch.set_num_threads(1)


def analyse(clip, out, *extra):
    return main(["analyse", str(clip), "--out", str(out), "--device", "cpu", "--threads", "1", *extra])


def test_the_file_holds_what_the_engine_finds_in_process(tiny_models, tiny_clip_paths, tmp_path, capsys):
    clip = tiny_clip_paths[0]
    models = ["--model", str(tiny_models["classifier"]), "--segmenter", str(tiny_models["segmenter"])]
    assert analyse(clip, tmp_path / "clip.npz", *models, "--explain", "cam", "--name", "zone 3") == 0
    read = read_analysis_file(tmp_path / "clip.npz")
    expected = Analyzer(tiny_models["classifier"], tiny_models["segmenter"], device="cpu").analyse(
        clip, name="zone 3", explain="cam"
    )
    assert read.to_json() == expected.to_json()
    assert (
        read.explanation.method == "cam"
        and read.segmentation.masks.shape == expected.segmentation.masks.shape
    )
    assert "analysed 8 frames of zone 3" in capsys.readouterr().out


def test_progress_lines_go_from_loading_to_done(tiny_models, tiny_clip_paths, tmp_path, capsys):
    assert (
        analyse(
            tiny_clip_paths[0],
            tmp_path / "a.npz",
            "--segmenter",
            str(tiny_models["segmenter"]),
            "--progress-lines",
        )
        == 0
    )
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("progress ")]
    steps = [step for _, _, step in lines]
    assert steps[0] == "load" and steps[1] == "read" and steps[-1] == "done" and "segment" in steps
    fractions = [int(done) / int(total) for done, total in (count.split("/") for _, count, _ in lines)]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([], "give --model (a clip classifier) and/or --segmenter"),
        (["--segmenter", "SEG", "--explain", "gradcam"], "--explain needs a classifier (--model)"),
        (["--model", "MISSING"], "no such"),
        (["--model", "CLS", "--device", "gpu"], "gpu"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tiny_models, tiny_clip_paths, tmp_path, capsys, arguments, message
):
    names = {
        "SEG": str(tiny_models["segmenter"]),
        "CLS": str(tiny_models["classifier"]),
        "MISSING": str(tmp_path / "x.pt"),
    }
    arguments = [names.get(a, a) for a in arguments]
    assert analyse(tiny_clip_paths[0], tmp_path / "a.npz", *arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lungus analyse: error: ") and message in error and "\n" not in error
    assert not (tmp_path / "a.npz").exists()


def test_a_missing_clip_or_a_folder_as_out_exit_2(tiny_models, tiny_clip_paths, tmp_path, capsys):
    model = ["--model", str(tiny_models["classifier"])]
    assert analyse(tmp_path / "missing.mp4", tmp_path / "a.npz", *model) == 2
    assert "missing.mp4: no such clip file or folder" in capsys.readouterr().err
    assert analyse(tiny_clip_paths[0], tmp_path, *model) == 2
    assert "--out must be a file, not a folder" in capsys.readouterr().err


def test_an_unreadable_clip_exits_2_without_traceback(tiny_models, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lungus",
            "analyse",
            str(notes),
            "--model",
            str(tiny_models["classifier"]),
            "--out",
            str(tmp_path / "a.npz"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().startswith(f"lungus analyse: error: {notes}")
        and result.stderr.strip().count("\n") == 0
    )
    assert not (tmp_path / "a.npz").exists()


def test_list_explanations_prints_the_classifiers_methods_as_one_json_line(tiny_models, capsys):
    assert main(["analyse", "--model", str(tiny_models["classifier"]), "--list-explanations"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"model": str(tiny_models["classifier"]), "explanations": ["gradcam", "lime", "cam"]}


def test_list_explanations_of_a_segmenter_is_empty(tiny_models, capsys):
    assert main(["analyse", "--model", str(tiny_models["segmenter"]), "--list-explanations"]) == 0
    assert json.loads(capsys.readouterr().out)["explanations"] == []


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--list-explanations"], "--list-explanations needs a classifier (--model)"),
        (["--list-explanations", "--model", "NOTES"], "notes.pt: not a lungus model"),
        (["--model", "CLS"], "give the CLIP to analyse and --out"),
    ],
)
def test_bad_list_explanations_or_no_clip_exit_2_with_one_line(tiny_models, tmp_path, capsys, arguments, message):
    notes = tmp_path / "notes.pt"
    notes.write_text("not a model")
    names = {"NOTES": str(notes), "CLS": str(tiny_models["classifier"])}
    assert main(["analyse", *[names.get(a, a) for a in arguments]]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lungus analyse: error: ") and message in error and "\n" not in error


def test_a_model_trained_on_simulated_clips_says_so(simulated_classifier, tiny_clip_paths, tmp_path, capsys):
    assert analyse(tiny_clip_paths[0], tmp_path / "clip.npz", "--model", str(simulated_classifier)) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: classifier tiny-cls was trained on simulated clips")
    assert read_analysis_file(tmp_path / "clip.npz").extra["warnings"] == err
