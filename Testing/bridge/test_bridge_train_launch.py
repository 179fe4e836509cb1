"""LungUSTrainLib: labeled sequences -> clips + manifest; a real `lungus train` subprocess."""

from __future__ import annotations

import sys

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.cli import main as lungus_main  # noqa: E402
from lungus.data.manifests.manifest import Manifest  # noqa: E402
from lungus.errors import LungUSError  # noqa: E402
from lungus.io import read_clip  # noqa: E402
from LungUSBLinesLib import sequences  # noqa: E402
from LungUSTrainLib import training, training_set  # noqa: E402
from LungUSTrainLib.training_set import LabeledSequence  # noqa: E402


@pytest.fixture
def two_sequences(headless, small_frames):
    return [
        sequences.frames_to_sequence(headless.scene, small_frames, "patient 7 zone 1", fps=25.0),
        sequences.frames_to_sequence(headless.scene, small_frames[::-1], "patient 9 zone 3", fps=25.0),
    ]


def test_labels_are_kept_on_the_sequences(two_sequences):
    entry = LabeledSequence(two_sequences[0], patient=" P7 ", label="present", zone="R1")
    training_set.store_labels(entry, "bline2")
    again = training_set.read_labels(two_sequences[0], "bline2")
    assert (again.patient, again.label, again.zone) == ("P7", "present", "R1")
    assert training_set.read_labels(two_sequences[0], "bline3").label == ""  # per scheme


def test_export_writes_clips_and_a_manifest_lungus_validate_accepts(
    two_sequences, small_frames, tmp_path, capsys
):
    entries = [
        LabeledSequence(two_sequences[0], patient="P7", label="Present", zone="R1"),
        LabeledSequence(two_sequences[1], patient="P9", label="no"),
    ]
    written = training_set.export_training_set(entries, tmp_path / "set", "bline2")
    assert lungus_main(["validate", str(written.manifest)]) == 0
    manifest = Manifest.load(written.manifest)
    assert manifest.columns == ["clip", "patient", "zone", "bline2"]
    assert manifest.column("bline2") == ["present", "absent"] and manifest.patients == ["P7", "P9"]
    assert manifest.column("clip") == ["clips/patient 7 zone 1.seq.nrrd", "clips/patient 9 zone 3.seq.nrrd"]
    np.testing.assert_array_equal(read_clip(manifest.clip_path(1), fan=False).frames, small_frames[::-1])
    assert written.failed == [] and "2 clips and manifest.csv written" in written.describe()


def test_export_reports_what_training_will_lack(two_sequences, tmp_path):
    written = training_set.export_training_set(
        [LabeledSequence(two_sequences[0], patient="P7", label="2")], tmp_path / "set", "lus4"
    )
    lines = written.describe().splitlines()
    assert lines[0] == f"1 clip and manifest.csv written to {tmp_path / 'set'}"
    assert any("empty class" in line and "warning" in line for line in lines[1:])


@pytest.mark.parametrize(
    "patient, label, message",
    [
        ("", "present", "has no patient"),
        ("P1", "", "has no bline2 label"),
        ("P1", "maybe", "not a bline2 label"),
    ],
)
def test_incomplete_labels_are_refused_by_sequence_name(two_sequences, tmp_path, patient, label, message):
    entries = [LabeledSequence(two_sequences[0], patient=patient, label=label)]
    with pytest.raises(LungUSError, match=f"'patient 7 zone 1'.*{message}"):
        training_set.export_training_set(entries, tmp_path, "bline2")
    assert not (tmp_path / "manifest.csv").exists()


def test_an_existing_training_set_is_not_overwritten(two_sequences, tmp_path):
    (tmp_path / "manifest.csv").write_text("clip,patient\n")
    with pytest.raises(LungUSError, match="already holds a training set"):
        training_set.export_training_set([LabeledSequence(two_sequences[0], "P1", "1")], tmp_path, "lus4")


def test_progress_lines_parse_to_the_fraction_of_the_whole_run():
    progress = training.parse_progress_line("progress 12.5/40 fold 2/4: seed 1/2: epoch 3/5: batch 4/8")
    assert progress.fraction == pytest.approx(12.5 / 40)
    assert progress.message == "fold 2/4: seed 1/2: epoch 3/5: batch 4/8"
    assert training.parse_progress_line("epoch 2/30  loss 0.8048  auc 0.875  0.2s") is None


def test_the_log_keeps_the_lines_people_read():
    lines = ["bline2: 12 training clips", "progress 1/30 epoch 1/30  loss 0.7  0.2s", "epoch 1/30  loss 0.7  0.2s"]
    assert training.log_lines(lines) == [lines[0], lines[2]]


@pytest.mark.torch
def test_request_builds_the_train_command(tiny_collection, tmp_path):
    request = training.TrainRequest(
        manifest=str(tiny_collection),
        out=str(tmp_path / "run"),
        task="bline3",
        model="frame_cnn",
        epochs=3,
        label_source="crowd-soft",
        model_args={"width": 4},
    )
    command = request.command("/opt/PythonSlicer")
    assert command[:4] == ["/opt/PythonSlicer", "-m", "lungus", "train"] and "--progress-lines" in command
    pairs = dict(zip(command[4::2], command[5::2]))
    assert (
        pairs["--task"] == "bline3" and pairs["--epochs"] == "3" and pairs["--label-source"] == "crowd-soft"
    )
    assert pairs["--model-arg"] == "width=4"


@pytest.mark.torch
def test_a_recipe_comes_first_so_the_request_overrides_it(tiny_collection, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("epochs: 60\nmodel: frame_cnn\n")
    request = training.TrainRequest(
        manifest=str(tiny_collection), out=str(tmp_path / "run"), model=None, recipe=str(recipe), folds=5,
        seeds=3, epochs=2,
    )
    arguments = request.command("/opt/PythonSlicer")[4:]
    assert "--model" not in arguments
    assert arguments.index("--config") < arguments.index("--epochs")
    pairs = dict(zip(arguments[::2], arguments[1::2]))
    assert (pairs["--config"], pairs["--folds"], pairs["--seeds"]) == (str(recipe), "5", "3")


def test_the_request_settings_are_train_config_fields():
    """TrainRequest is made from TrainConfig's fields: same names, types, help and checks, so they cannot drift."""
    import dataclasses

    from lungus.train.config import TrainConfig

    config_fields = {item.name: item for item in dataclasses.fields(TrainConfig)}
    request_fields = {item.name: item for item in dataclasses.fields(training.TrainRequest)}
    assert set(training.PANEL_SETTINGS) <= set(request_fields)
    for name in training.PANEL_SETTINGS:
        assert request_fields[name].type == config_fields[name].type
        assert request_fields[name].metadata == config_fields[name].metadata
        assert request_fields[name].default is None  # not given: the recipe's, else the engine's default
    assert set(request_fields) - set(training.PANEL_SETTINGS) == {"manifest", "out", "recipe", "extra_arguments"}


def test_the_request_arguments_make_the_config_it_asks_for(tiny_collection, tmp_path):
    from lungus.cli import build_parser
    from lungus.commands.train import setting_overrides
    from lungus.train.config import TrainConfig

    request = training.TrainRequest(
        manifest=str(tiny_collection), out=str(tmp_path / "run"), task="lus4", label_source="crowd-majority",
        folds=3, seeds=2, epochs=4, size=64, frames=8, batch_size=2, threads=1, device="cpu",
    )
    args = build_parser().parse_args(["train", *request.arguments()])
    config = TrainConfig.from_sources(args.config, **setting_overrides(args))
    assert {name: getattr(config, name) for name in request.settings()} == {
        **request.settings(), "size": (64, 64)}
    assert args.progress_lines


@pytest.mark.parametrize(
    "change, message",
    [
        ({"manifest": "/no/manifest.csv"}, "no such manifest"),
        ({"recipe": "/no/recipe.yaml"}, "no such recipe"),
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"task": "seg"}, "task must be one of"),
        pytest.param({"model": "unet_small"}, "unknown classifier", marks=pytest.mark.torch),  # the model registry
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"size": 16}, "size must be at least 32x32"),
        ({"threads": 0}, "threads must be >= 1"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ],
)
def test_bad_training_requests_are_refused(tiny_collection, tmp_path, change, message):
    values = {"manifest": str(tiny_collection), "out": str(tmp_path / "run"), **change}
    with pytest.raises(LungUSError, match=message):
        training.TrainRequest(**values).validate()


@pytest.mark.torch
def test_a_training_subprocess_runs_reports_epochs_and_leaves_a_model_card(tiny_collection, tmp_path):
    request = training.TrainRequest(
        manifest=str(tiny_collection),
        out=str(tmp_path / "run"),
        task="bline2",
        model="frame_cnn",
        epochs=1,
        size=32,
        frames=4,
        batch_size=4,
        threads=1,
        device="cpu",
        model_args={"width": 4},
    )
    job = training.start_training(request, python=sys.executable)
    progress = []
    job.wait(timeout=300, on_lines=lambda lines: progress.extend(filter(None, map(training.parse_progress_line, lines))))
    assert job.succeeded, job.error_message()
    assert any(p.message.startswith("epoch 1/1  loss ") for p in progress)
    assert job.progress.fraction == 1.0
    assert not any("batch/s" in line for line in job.lines)  # no terminal progress bar in a pipe
    result = training.read_training_result(tmp_path / "run")
    assert result.card.task == "bline2" and result.card.training_data["clips"] > 0
    assert result.validation_metrics["n_clips"] > 0
    text = result.describe()
    assert "Validation (" in text and "Best epoch: 1 of 1" in text


@pytest.mark.torch
def test_a_cross_validated_seed_ensemble_is_described_by_its_out_of_fold_metrics(tiny_collection, tmp_path,
                                                                                 capsys):
    arguments = ["train", "--manifest", str(tiny_collection), "--out", str(tmp_path / "run"), "--size", "32",
                 "--frames", "4", "--epochs", "2", "--batch-size", "4", "--threads", "1", "--model-arg",
                 "width=4", "--folds", "2", "--seeds", "2", "--val-fraction", "0", "--progress-lines"]
    assert lungus_main(arguments) == 0
    text = training.read_training_result(tmp_path / "run").describe()
    assert "architecture ensemble of 4 frame_cnn models" in text
    assert "Cross-validation, out of fold (" in text and "auc " in text
    assert "Training data per model: " in text
    # Its progress lines drive one progress bar over all 2 folds x 2 seeds, never stepping back.
    progress = [p for p in map(training.parse_progress_line, capsys.readouterr().out.splitlines()) if p]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [p.fraction for p in progress if p.message.startswith("fold 2/2: seed 1/2: epoch 1/2  ")] == [0.625]
    assert progress[-1].message.startswith("fold 2/2: seed 2/2: ")


@pytest.mark.torch
def test_a_run_that_did_not_finish_has_no_result(tmp_path):
    with pytest.raises(LungUSError, match="did not finish"):
        training.read_training_result(tmp_path)


def test_clip_sequences_leave_out_results_recorded_beside_clips(
    headless, two_sequences, small_frames, tiny_models, tiny_clip_paths
):
    from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.results import add_analysis_to_scene

    loaded = load_clip(headless.scene, tiny_clip_paths[0], name="analysed")
    analyzer = AnalyzerCache().get(tiny_models["classifier"], tiny_models["segmenter"], device="cpu")
    analysis = analyse_sequence(analyzer, loaded.nodes.sequence, clip=loaded.clip, explain="gradcam")
    add_analysis_to_scene(headless.scene, loaded.nodes, analysis)
    sequences.frames_to_sequence(
        headless.scene,
        (small_frames > 100).astype(np.uint8),
        "a user's labelmap",
        node_class="vtkMRMLLabelMapVolumeNode",
    )
    assert headless.scene.GetNumberOfNodesByClass("vtkMRMLSequenceNode") == 7
    found = [s.GetName() for s in training_set.clip_sequences(headless.scene)]
    assert found == ["patient 7 zone 1", "patient 9 zone 3", "analysed"]
