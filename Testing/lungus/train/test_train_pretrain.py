"""lungus.train.pretrain: contrastive pretraining of a frame_cnn encoder on unlabelled clips, its model
file, and `lungus train --init` from it (docs/pretraining.md)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lungus.data.pipeline.clip_preparation import ClipCache
from lungus.data.pipeline.training_sets import ViewPairSet, augmenter, neighbour_window, readable_clips
from lungus.errors import LungUSError
from lungus.models.model_file import load_model_file
from lungus.models.normalisation import normalise_frames
from lungus.models.registry import build_model
from lungus.train.config import TrainConfig
from lungus.train.losses import NTXentLoss
from lungus.train.pretrain import clip_manifest, pretrain
from lungus.train.pretrain_config import PretrainConfig
from lungus.train.setup import prepare_run

#: The recipe's network (plain encoder, context channels, attention pooling), shrunk for speed.
NETWORK = {"model_args": {"width": 4, "backbone": "plain", "context": True}, "size": (32, 32), "frames": 4}
RECIPE = Path(__file__).resolve().parents[3] / "Resources" / "recipes" / "covid_blues_bline2.yaml"
TINY = {**NETWORK, "batch_size": 8, "lr": 3e-3, "neighbour_gap": 2, "threads": 1, "device": "cpu"}


def _quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def pretrained(tiny_collection, tmp_path_factory):
    """12 seeded epochs on the 16 tiny clips (two seconds)."""
    out = tmp_path_factory.mktemp("pretrain") / "run"
    return pretrain(PretrainConfig(clips=str(tiny_collection), out=str(out), epochs=12, seed=0, **TINY), log=_quiet)


def test_the_contrastive_loss_falls_as_it_learns(pretrained):
    losses = [row["train_loss"] for row in pretrained.history]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.6 * losses[0]


def _view_similarities(network, tiny_collection, tmp_path) -> tuple[float, float]:
    """Mean cosine similarity of the two views of the same clip and of views of different clips,
    on views never drawn in training (epoch 1000). Embeddings are centred on their mean first: the
    ReLU features share a large common part, which BatchNorm in the projection removes in training."""
    config = PretrainConfig(clips=str(tiny_collection), out=str(tmp_path / "unused"), **TINY).training_config()
    manifest = clip_manifest(str(tiny_collection))
    clips = readable_clips(manifest, range(len(manifest)), config.preprocessing(), ClipCache(config.cache_folder),
                           _quiet, "test")
    views = ViewPairSet(clips, 4, 2, seed=123, augment=augmenter(config.augmentation()))
    views.set_epoch(1000)
    items = [views[i] for i in range(len(views))]

    def embed(key):
        frames = torch.stack([item[key] for item in items])
        return network.clip_embedding(normalise_frames(frames, {"mean": 0.449, "std": 0.226}).unsqueeze(1))

    with torch.no_grad():
        first, second = embed("first"), embed("second")
    centre = torch.cat([first, second]).mean(dim=0)
    similarity = F.normalize(first - centre, dim=1) @ F.normalize(second - centre, dim=1).T
    n = len(items)
    positives = similarity.diag().mean().item()
    negatives = ((similarity.sum() - similarity.diag().sum()) / (n * n - n)).item()
    return positives, negatives


def test_after_pretraining_two_views_of_a_clip_are_closer_than_views_of_different_clips(
        pretrained, tiny_collection, tmp_path):
    torch.manual_seed(0)
    untrained = build_model("frame_cnn", 2, **NETWORK["model_args"]).eval()
    trained = load_model_file(pretrained.model_path).model
    positives, negatives = _view_similarities(trained, tiny_collection, tmp_path)
    before = _view_similarities(untrained, tiny_collection, tmp_path)
    assert positives > negatives + 0.4
    assert positives - negatives > before[0] - before[1] + 0.15  # learned, not there from the start


def test_the_encoder_file_loads_safely_and_says_what_it_is(pretrained):
    payload = torch.load(pretrained.model_path, map_location="cpu", weights_only=True)
    assert set(payload) == {"format_version", "state_dict", "card"}
    card = load_model_file(pretrained.model_path).card
    record = card.pretraining
    assert (record["kind"], record["method"], record["loss"]) == ("encoder", "contrastive", "nt-xent")
    assert record["modules"] == ["encoder", "attention"]  # not the head: it never learned
    assert record["epochs"] == 12 and len(record["loss_curve"]) == 12
    assert card.label_source.startswith("none")
    assert card.training_data == {"clips": 16, "patients": 8, "simulated_clips": 16}
    assert card.preprocessing["layout"] == "cartesian" and card.preprocessing["size"] == [32, 32]


def test_train_init_copies_every_pretrained_tensor_and_keeps_the_head(pretrained, tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "tuned"), init=str(pretrained.model_path),
                         **NETWORK)
    logged = []
    run = prepare_run(config, log=logged.append)
    source = load_model_file(pretrained.model_path).model.state_dict()
    state = run.model.state_dict()
    learned = [key for key in state if key.startswith(("encoder.", "attention."))]
    assert learned and all(torch.equal(state[key], source[key]) for key in learned)
    assert run.training_summary["init"] == {"source": str(pretrained.model_path), "tensors_loaded": len(learned),
                                            "tensors_kept": 2}  # head.weight, head.bias
    assert f"initialised {len(learned)} of {len(state)} tensors" in " ".join(logged)


def test_train_init_refuses_a_network_other_than_the_pretrained_one(pretrained, tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "tuned"), init=str(pretrained.model_path),
                         **{**NETWORK, "model_args": {**NETWORK["model_args"], "width": 8}})
    with pytest.raises(LungUSError, match=r"pretrained encoder's \d+ tensors do not fit FrameCNN.*model_args"):
        prepare_run(config, log=_quiet)


def _metrics(run) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def test_an_interrupted_run_resumed_ends_as_an_uninterrupted_one(tiny_collection, tmp_path):
    def config(name):
        return PretrainConfig(clips=str(tiny_collection), out=str(tmp_path / name), epochs=4, seed=2, **TINY)

    straight = pretrain(config("straight"), log=_quiet)

    def stop_after_two_epochs(done, _total, _what):
        if done == 2:
            raise KeyboardInterrupt  # as Ctrl+C or lungus.job_control's stop file arrive, after the checkpoint
    with pytest.raises(KeyboardInterrupt):
        pretrain(config("stopped"), log=_quiet, progress=stop_after_two_epochs)
    assert len(_metrics(tmp_path / "stopped")) == 2
    resumed = pretrain(config("stopped"), log=_quiet, resume=True)
    assert _metrics(tmp_path / "stopped") == _metrics(tmp_path / "straight")
    a, b = load_model_file(straight.model_path).model.state_dict(), load_model_file(resumed.model_path).model.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_an_existing_run_needs_resume_and_a_resume_the_same_settings(tiny_collection, tmp_path):
    config = PretrainConfig(clips=str(tiny_collection), out=str(tmp_path / "run"), epochs=1, **TINY)
    pretrain(config, log=_quiet)
    with pytest.raises(LungUSError, match="--resume"):
        pretrain(config, log=_quiet)
    config.temperature = 0.5
    with pytest.raises(LungUSError, match=r"temperature: 0\.2 -> 0\.5.*resume with the same ones"):
        pretrain(config, log=_quiet, resume=True)


def test_a_folder_of_clips_is_one_patient_per_clip(tiny_clip_paths):
    manifest = clip_manifest(str(tiny_clip_paths[0].parent))
    assert len(manifest) == len(tiny_clip_paths)
    assert len(set(manifest.patients)) == len(manifest)


@pytest.mark.parametrize("what, message", [("missing", "no such folder or manifest"),
                                           ("clip", "not a single file"), ("empty", "no clips in this folder")])
def test_clips_that_are_neither_a_folder_of_clips_nor_a_manifest_are_refused(tiny_clip_paths, tmp_path, what,
                                                                              message):
    path = {"missing": tmp_path / "nowhere", "clip": tiny_clip_paths[0], "empty": tmp_path}[what]
    with pytest.raises(LungUSError, match=message):
        clip_manifest(str(path))


def test_the_recipe_gives_its_network_and_input_and_its_label_keys_are_ignored():
    config = PretrainConfig.from_sources(RECIPE, clips="m.csv", out="run")
    assert config.model_args == {"backbone": "plain", "context": True, "width": 16, "dropout": 0.3,
                                 "attention_hidden": 32}
    assert (config.size, config.layout, config.frames) == ((64, 64), "polar", 16)
    assert config.augment["lateral_shift"] == 0.08 and config.fallback_sector[2] == 33.4
    tuned = TrainConfig.from_sources(RECIPE, manifest="m.csv", out="tuned")
    network = ("model", "model_args", "size", "frames", "layout", "fallback_sector", "fan_crop", "target_fps")
    assert {name: getattr(config, name) for name in network} == {name: getattr(tuned, name) for name in network}


@pytest.mark.parametrize("settings, message", [
    ({"batch_size": 1}, "batch_size must be >= 2"),
    ({"out": "runs/encoder.pt"}, r"out is the run folder, not the model file \(RUN/model.pt is written in it\)"),
    ({"temperature": 0}, r"temperature must be in \(0, 1\]"),
    ({"neighbour_gap": -1}, "neighbour_gap must be >= 0"),
    ({"size": 16}, "size must be at least 32x32"),
    ({"augment": {"gain": [1.0, 1.1], "blur": 2}}, "unknown augmentation setting 'blur'"),
])
def test_bad_settings_are_refused_saying_what_to_do(settings, message):
    with pytest.raises(LungUSError, match=message):
        PretrainConfig(**{"clips": "m.csv", "out": "run", **settings})


def test_a_setting_neither_command_knows_is_refused(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: bline2\ntemprature: 0.1\n")
    with pytest.raises(LungUSError, match="unknown pretraining setting 'temprature'; settings are: .*temperature"):
        PretrainConfig.from_sources(recipe, clips="m.csv", out="run")


def test_a_temporal_neighbour_starts_at_most_gap_frames_away_inside_the_clip():
    rng = np.random.default_rng(0)
    window = np.arange(10, 14)
    starts = {int(neighbour_window(window, 20, 3, rng)[0]) for _ in range(200)}
    assert starts == set(range(7, 14))
    assert {int(neighbour_window(np.arange(0, 4), 20, 3, rng)[0]) for _ in range(100)} == set(range(0, 4))
    assert neighbour_window(window, 20, 0, rng).tolist() == window.tolist()


def test_nt_xent_is_low_when_each_view_finds_its_partner_and_high_when_it_cannot():
    views = F.normalize(torch.eye(4), dim=1)
    loss = NTXentLoss(temperature=0.1)
    assert loss(views, views).item() < 1e-3
    assert loss(views, views.roll(1, dims=0)).item() > 5


def test_nt_xent_does_not_push_apart_clips_of_one_patient():
    torch.manual_seed(0)
    first, second = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(4, 8), dim=1)
    loss = NTXentLoss(temperature=0.5)
    together = loss(first, second, torch.tensor([0, 0, 1, 2]))
    # Items 0 and 1 share a patient: without each other they are as two batches of three and one pair.
    views = torch.cat([first, second])
    logits = views @ views.T / 0.5
    partner = torch.tensor([4, 5, 6, 7, 0, 1, 2, 3])
    excluded = torch.eye(8, dtype=torch.bool)
    for i, j in ((0, 1), (0, 5), (4, 1), (4, 5)):
        excluded[i, j] = excluded[j, i] = True
    expected = F.cross_entropy(logits.masked_fill(excluded, float("-inf")), partner)
    assert torch.isclose(together, expected)
    assert not torch.isclose(together, loss(first, second))


def test_torchrun_replicas_end_identical(tiny_collection, tmp_path):
    pytest.importorskip("torch.distributed.run")
    run = tmp_path / "ddp"
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lungus",
         "pretrain", "--clips", str(tiny_collection), "--out", str(run), "--size", "32", "--frames", "4",
         "--model-arg", "width=4", "--model-arg", "backbone=plain", "--model-arg", "context=true",
         "--batch-size", "4", "--epochs", "2", "--threads", "1", "--device", "cpu"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2 and replicas["checksums"][0] == replicas["checksums"][1]
    assert load_model_file(run / "model.pt").card.pretraining["epochs"] == 2
