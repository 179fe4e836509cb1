"""`lungus pretrain` and fine-tuning its encoder with `lungus train --init --layer-lr-decay`
(docs/pretraining.md); bad input is one line and exit status 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lungus.cli import main
from lungus.models.model_file import read_model_file_card
from lungus.progress_lines import ProgressLine

RECIPE = Path(__file__).resolve().parents[2] / "Resources" / "recipes" / "covid_blues_bline2.yaml"
#: The recipe's network, shrunk: model args on the command line replace the recipe's whole mapping.
SMALL = ["--size", "32", "--frames", "4", "--model-arg", "width=4", "--model-arg", "backbone=plain",
         "--model-arg", "context=true", "--batch-size", "8", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def encoder(tiny_collection, tmp_path_factory) -> Path:
    """An encoder pretrained for 2 epochs with the real-clip recipe's settings, shrunk."""
    run = tmp_path_factory.mktemp("encoder") / "run"
    assert main(["pretrain", "--clips", str(tiny_collection), "--config", str(RECIPE), *SMALL, "--epochs", "2",
                 "--out", str(run)]) == 0
    return run / "model.pt"


def test_pretrain_takes_a_folder_of_clips_and_reports_progress(tiny_clip_paths, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", "--clips", str(tiny_clip_paths[0].parent), *SMALL, "--epochs", "2", "--out", str(run),
                 "--progress-lines"]) == 0
    output = capsys.readouterr().out
    progress = [line for line in map(ProgressLine.parse, output.splitlines()) if line is not None]
    assert {p.total for p in progress} == {2} and progress[-1].done == 2
    assert any(0 < p.done < 1 for p in progress)  # inside the first epoch
    assert "pretraining on 16 clips of 16 patients (labels unused)" in output
    assert (run / "metrics.csv").is_file() and (run / "checkpoint.pt").is_file()
    assert read_model_file_card(run / "model.pt").pretraining["clips"] == str(tiny_clip_paths[0].parent)


def test_the_recipe_works_as_config_and_its_training_only_keys_are_named(encoder, tiny_collection, tmp_path, capsys):
    assert main(["pretrain", "--clips", str(tiny_collection), "--config", str(RECIPE), *SMALL, "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 0
    output = capsys.readouterr().out
    assert "ignoring the recipe's training-only settings: class_weights, eval_aggregation" in output
    card = read_model_file_card(encoder)
    assert (card.preprocessing["layout"], card.extra["config"]["augment"]["lateral_shift"]) == ("polar", 0.08)


def test_train_fine_tunes_the_encoder_with_layer_rates_and_records_both(encoder, tiny_collection, tmp_path, capsys):
    run = tmp_path / "tuned"
    assert main(["train", "--manifest", str(tiny_collection), "--config", str(RECIPE), *SMALL, "--epochs", "1",
                 "--init", str(encoder), "--layer-lr-decay", "0.5", "--out", str(run)]) == 0
    assert "initialised 54 of 56 tensors from" in capsys.readouterr().out
    card = read_model_file_card(run / "model.pt")
    assert card.extra["config"]["layer_lr_decay"] == 0.5
    assert card.training_data["init"] == {"source": str(encoder), "tensors_loaded": 54, "tensors_kept": 2}
    assert card.pretraining is None  # a trained classifier now


def test_simulator_pretraining_is_training_on_simulated_truth_then_init(tiny_collection, tmp_path, capsys):
    """docs/pretraining.md#simulator: the documented path; its every tensor fits the fine-tuning network."""
    simulated = tmp_path / "simulated"
    assert main(["train", "--manifest", str(tiny_collection), "--label-source", "truth", *SMALL, "--epochs", "1",
                 "--out", str(simulated)]) == 0
    assert read_model_file_card(simulated / "model.pt").trained_on_simulated_clips
    capsys.readouterr()
    assert main(["train", "--manifest", str(tiny_collection), *SMALL, "--epochs", "1", "--init",
                 str(simulated / "model.pt"), "--layer-lr-decay", "0.7", "--out", str(tmp_path / "tuned")]) == 0
    assert "initialised 56 of 56 tensors from" in capsys.readouterr().out


def test_a_pretrained_encoder_is_not_run_as_a_classifier(encoder, tiny_collection, tmp_path, capsys):
    assert main(["evaluate", "--model", str(encoder), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "eval")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "pretrained encoder" in error and "lungus train --init" in error


@pytest.mark.parametrize("arguments, message", [
    ([], "clips is required"),
    (["--clips", "nowhere"], "no such folder or manifest"),
    (["--clips", "MANIFEST", "--batch-size", "1"], "batch_size must be >= 2"),
    (["--clips", "MANIFEST", "--temperature", "2"], r"temperature must be in \(0, 1\]"),
    (["--clips", "MANIFEST", "--model", "r3d_18"], "r3d_18 has no window embedding to pretrain; use frame_cnn"),
    (["--clips", "MANIFEST", "--resume"], "no checkpoint to resume from"),
])
def test_bad_input_is_one_line_and_exit_status_2(tiny_collection, tmp_path, capsys, arguments, message):
    arguments = [str(tiny_collection) if a == "MANIFEST" else a for a in arguments]
    assert main(["pretrain", *arguments, "--out", str(tmp_path / "run"), *SMALL[-4:], "--epochs", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("lungus pretrain: error:") and error.count("\n") == 0
    assert re.search(message, error)


@pytest.mark.parametrize("decay", ["0", "1.5"])
def test_train_refuses_a_layer_decay_outside_0_to_1(tiny_collection, tmp_path, capsys, decay):
    assert main(["train", "--manifest", str(tiny_collection), "--out", str(tmp_path / "run"),
                 "--layer-lr-decay", decay]) == 2
    assert "layer_lr_decay must be in (0, 1]" in capsys.readouterr().err


def test_per_fold_pretraining_starts_each_cross_validation_fold_from_its_own_encoder(tiny_collection, tmp_path):
    manifest = tmp_path / "folds.csv"
    assert main(["split", str(tiny_collection), "--folds", "2", "--out", str(manifest)]) == 0
    for fold in (0, 1):
        assert main(["pretrain", "--clips", str(manifest), "--holdout-fold", str(fold), *SMALL, "--epochs", "1",
                     "--out", str(tmp_path / f"pretrained{fold}")]) == 0
        card = read_model_file_card(tmp_path / f"pretrained{fold}" / "model.pt")
        assert card.pretraining["holdout_fold"] == fold and card.training_data["clips"] < 16
    init = str(tmp_path / "pretrained{fold}" / "model.pt")
    assert main(["train", "--manifest", str(manifest), "--folds", "2", "--init", init, *SMALL, "--epochs", "1",
                 "--out", str(tmp_path / "cv")]) == 0
    for fold in (0, 1):
        card = read_model_file_card(tmp_path / "cv" / f"fold{fold}" / "model.pt")
        assert card.training_data["init"]["source"] == str(tmp_path / f"pretrained{fold}" / "model.pt")


@pytest.mark.parametrize("arguments, message", [
    (["--folds", "1"], r"init with \{fold\} names one file per cross-validation fold; it needs folds > 1"),
    (["--folds", "2"], r"the folds must be the manifest's own: give it a fold column of 2 folds"),
])
def test_a_fold_placeholder_needs_the_manifest_s_folds(tiny_collection, tmp_path, capsys, arguments, message):
    assert main(["train", "--manifest", str(tiny_collection), "--init", str(tmp_path / "p{fold}.pt"), *arguments,
                 *SMALL, "--epochs", "1", "--out", str(tmp_path / "cv")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_holding_out_a_fold_needs_the_fold_column(tiny_collection, tmp_path, capsys):
    assert main(["pretrain", "--clips", str(tiny_collection), "--holdout-fold", "0", *SMALL, "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 2
    assert "holdout_fold needs a manifest with a fold column; run `lungus split" in capsys.readouterr().err
