import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lungus.errors import LungUSError
from lungus.evaluate.model_eval import evaluate_model
from lungus.models.model_file import load_model_file
from lungus.train.config import TrainConfig
from lungus.train.cv import cross_validate
from lungus.train.seeds import fit_seeds, member_config

SEEDS = 2


def _config(manifest, out, **settings):
    values = dict(model_args={"width": 4}, size=(32, 32), frames=4, epochs=2, batch_size=4, threads=1,
                  val_fraction=0.3, seed=5, seeds=SEEDS)
    values.update(settings)
    return TrainConfig(manifest=str(manifest), out=str(out), **values)


@pytest.fixture(scope="module")
def seed_run(tiny_collection, tmp_path_factory):
    config = _config(tiny_collection, tmp_path_factory.mktemp("seeds") / "run")
    return config, fit_seeds(config, log=lambda _m: None)


def test_members_train_from_consecutive_seeds_on_one_split(seed_run):
    config, _ = seed_run
    cards = [load_model_file(config.run_dir / f"seed{s}" / "model.pt").card for s in range(SEEDS)]
    assert [card.extra["config"]["seed"] for card in cards] == [5, 6]
    # Same validation patients: the seed moves only the random draws of training.
    from lungus.train.setup import prepare_run

    val_rows = [prepare_run(member_config(config, s), log=lambda _m: None).val_set.clips.rows for s in range(SEEDS)]
    assert val_rows[0] == val_rows[1] and len(val_rows[0]) > 0
    first = load_model_file(config.run_dir / "seed0" / "model.pt").model.state_dict()
    second = load_model_file(config.run_dir / "seed1" / "model.pt").model.state_dict()
    assert any(not torch.equal(first[k], second[k]) for k in first if first[k].is_floating_point())


def test_run_model_is_the_members_average_with_its_own_validation_score(seed_run):
    config, result = seed_run
    loaded = load_model_file(config.run_dir / "model.pt")
    assert loaded.card.architecture["name"] == "ensemble"
    assert len(loaded.card.architecture["args"]["members"]) == SEEDS
    assert loaded.card.extra["seeds"] == [5, 6]
    assert loaded.card.validation_metrics["auc"] == pytest.approx(result.val_metrics["auc"])


def test_resume_keeps_finished_members_and_trains_the_missing_one(seed_run):
    config, _ = seed_run
    kept = (config.run_dir / "seed0" / "model.pt").stat().st_mtime_ns
    before = load_model_file(config.run_dir / "model.pt").model.state_dict()
    # As if killed before member 1 started: its folder and the ensemble are not there yet.
    for name in ("model.pt", "checkpoint.pt"):
        (config.run_dir / "seed1" / name).unlink()
    (config.run_dir / "model.pt").unlink()
    messages: list[str] = []
    fit_seeds(config, resume=True, log=messages.append)
    assert (config.run_dir / "seed0" / "model.pt").stat().st_mtime_ns == kept
    assert sum("already done" in m for m in messages) == 1
    after = load_model_file(config.run_dir / "model.pt").model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_member_config_changes_seed_and_folder_only(tiny_collection, tmp_path):
    config = _config(tiny_collection, tmp_path / "run", split_seed=None)
    member = member_config(config, 1)
    assert (member.seed, member.seeds, member.partition_seed) == (6, 1, 5)
    assert member.run_dir == tmp_path / "run" / "seed1"
    changed = {k for k, v in member.to_dict().items() if config.to_dict()[k] != v}
    assert changed == {"out", "seed", "seeds", "split_seed", "cache_dir"}
    # Every member reads the clips the run would have cached without seeds.
    assert member.cache_folder == config.cache_folder == tmp_path / ".lungus-cache"


@pytest.fixture(scope="module")
def seed_cv_run(tiny_collection, tmp_path_factory):
    config = _config(tiny_collection, tmp_path_factory.mktemp("seedcv") / "run", folds=2, val_fraction=0)
    return config, cross_validate(config, log=lambda _m: None)


def test_cross_validation_scores_each_fold_with_its_seed_ensemble(tiny_collection, seed_cv_run, tmp_path):
    config, _ = seed_cv_run
    for k in range(2):
        fold_dir = config.run_dir / f"fold{k}"
        held_out = _probabilities(fold_dir / "test" / "predictions.csv")
        # The fold's ensemble file, scored anew, gives the same probabilities on its held-out clips.
        evaluate_model(fold_dir / "model.pt", tiny_collection, tmp_path / f"fold{k}", n_boot=0, device="cpu",
                       log=lambda _m: None)
        fresh = _probabilities(tmp_path / f"fold{k}" / "predictions.csv")
        assert held_out and all(np.allclose(fresh[clip], p, atol=1e-5) for clip, p in held_out.items())
        for s in range(SEEDS):
            assert (fold_dir / f"seed{s}" / "test" / "metrics.json").is_file()


def test_cross_validation_model_averages_every_fold_and_seed(seed_cv_run):
    config, _ = seed_cv_run
    card = load_model_file(config.run_dir / "model.pt").card
    assert len(card.architecture["args"]["members"]) == 2 * SEEDS
    assert card.extra["cross_validation"] == {"folds": 2, "seeds": SEEDS}


def test_seeds_must_be_positive_and_for_classifiers(tiny_collection, tmp_path):
    with pytest.raises(LungUSError, match="seeds must be >= 1"):
        _config(tiny_collection, tmp_path / "a", seeds=0)
    with pytest.raises(LungUSError, match="seeds > 1 averages clip classifiers"):
        _config(tiny_collection, tmp_path / "b", task="seg")


def test_resume_accepts_a_checkpoint_written_before_a_setting_existed(tiny_collection, tmp_path):
    from lungus.train.loop import fit

    config = _config(tiny_collection, tmp_path / "run", seeds=1, epochs=1, val_fraction=0)
    fit(config, log=lambda _m: None)
    checkpoint = config.run_dir / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    for added in ("seeds", "split_seed"):
        del state["config"][added]
    torch.save(state, checkpoint)
    resumed = fit(config.replace(epochs=1), resume=True, log=lambda _m: None)
    assert resumed.epochs_run == 1


def test_cli_seeds_writes_members_and_their_average(tiny_collection, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "lungus", "train", "--manifest", str(tiny_collection), "--out", str(out),
         "--model-arg", "width=4", "--size", "32", "--frames", "4", "--epochs", "1", "--batch-size", "4",
         "--threads", "1", "--val-fraction", "0", "--seeds", "2"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads(json.dumps(load_model_file(out / "model.pt").card.extra))
    assert card["seeds"] == [0, 1]
    assert (out / "seed1" / "model.pt").is_file()


def _probabilities(path):
    with open(path, newline="") as handle:
        return {row["clip"]: [float(row["p_absent"]), float(row["p_present"])] for row in csv.DictReader(handle)}


def test_torchrun_trains_every_member_in_one_process_group(tiny_collection, tmp_path):
    pytest.importorskip("torch.distributed.run")
    run = tmp_path / "ddp"
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lungus",
         "train", "--manifest", str(tiny_collection), "--out", str(run), "--model-arg", "width=4", "--size", "32",
         "--frames", "4", "--epochs", "1", "--batch-size", "4", "--seeds", "2", "--val-fraction", "0.3"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    for s in range(SEEDS):
        checksums = json.loads((run / f"seed{s}" / "replicas.json").read_text())["checksums"]
        assert len(checksums) == 2 and checksums[0] == checksums[1]
    single = fit_seeds(_config(tiny_collection, tmp_path / "one", seed=0, epochs=1), log=lambda _m: None)
    # Both ranks' validation clips are gathered into the ensemble's score.
    ensemble = load_model_file(run / "model.pt").card.validation_metrics
    assert ensemble["n_clips"] == single.val_metrics["n_clips"]
