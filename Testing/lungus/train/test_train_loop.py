import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lungus.cli import main
from lungus.errors import LungUSError
from lungus.models.model_file import load_model_file
from lungus.train.config import TrainConfig
from lungus.train.distributed import state_checksum
from lungus.train.loop import fit, to_channels_last

TINY = ["--task", "bline2", "--model", "frame_cnn", "--model-arg", "width=4", "--size", "32", "--frames", "4",
        "--batch-size", "4", "--threads", "1", "--seed", "5", "--val-fraction", "0.25"]


def _rows(run):
    with open(run / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def _comparable(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_training_learns_the_simulated_task(tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), model_args={"width": 4},
                         size=(32, 32), frames=4, epochs=8, batch_size=4, lr=3e-3, augment=False, threads=1,
                         val_fraction=0.25, seed=1)
    result = fit(config, log=lambda _m: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    loaded = load_model_file(result.model_path)
    assert loaded.card.task == "bline2"
    assert loaded.card.training_data["clips"] + 4 >= 12  # about three quarters of 16 clips train
    assert loaded.card.training_data["simulated_clips"] == loaded.card.training_data["clips"]


def test_an_existing_run_needs_resume(tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), model_args={"width": 4},
                         size=(32, 32), frames=4, epochs=1, batch_size=4, threads=1)
    fit(config, log=lambda _m: None)
    with pytest.raises(LungUSError, match="--resume"):
        fit(config, log=lambda _m: None)


def _finished_run(tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), model_args={"width": 4},
                         size=(32, 32), frames=4, epochs=2, batch_size=4, threads=1)
    fit(config, log=lambda _m: None)
    return config


def test_resume_names_the_settings_that_changed(tiny_collection, tmp_path):
    config = _finished_run(tiny_collection, tmp_path)
    config.lr, config.batch_size = config.lr * 2, 8
    with pytest.raises(LungUSError, match=r"batch_size: 4 -> 8; lr: .*resume with the same ones"):
        fit(config, resume=True, log=lambda _m: None)


def test_resume_accepts_other_threads_and_workers(tiny_collection, tmp_path):
    config = _finished_run(tiny_collection, tmp_path)
    config.threads, config.workers = 2, 1
    result = fit(config, resume=True, log=lambda _m: None)
    assert [row["epoch"] for row in result.history] == [1, 2]


def test_kill_then_resume_equals_an_uninterrupted_run(tiny_collection, tmp_path):
    epochs = 12
    straight = tmp_path / "straight"
    args = ["train", "--manifest", str(tiny_collection), "--epochs", str(epochs), *TINY]
    assert main([*args, "--out", str(straight)]) == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "lungus", *args, "--out", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (killed / "metrics.csv").exists() and len(_rows(killed)) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, "training finished before it could be killed"
    done_before_kill = len(_rows(killed))
    assert 2 <= done_before_kill < epochs

    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert _comparable(_rows(killed)) == _comparable(_rows(straight))
    a, b = load_model_file(straight / "model.pt").model, load_model_file(killed / "model.pt").model
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_torchrun_replicas_end_identical(tiny_collection, tmp_path):
    pytest.importorskip("torch.distributed.run")
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lungus",
         "train", "--manifest", str(tiny_collection), "--epochs", "2", *TINY, "--out", str(run)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    replicas = json.loads((run / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    assert replicas["checksums"][0] == replicas["checksums"][1]
    saved = load_model_file(run / "model.pt").model
    assert state_checksum(saved) == replicas["checksums"][0]


def test_channels_last_stores_2d_and_3d_convolutions_in_their_layouts():
    model = to_channels_last(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv3d(8, 8, 3)))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[1].weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_channels_last_refuses_narrow_strided_1x1_convolutions_on_the_cpu():
    from lungus.models.registry import build_model

    with pytest.raises(LungUSError, match=r"downsample.*8 input channels.*width >= 16"):
        to_channels_last(build_model("frame_cnn", 2, width=8), "cpu")
    wide = to_channels_last(build_model("frame_cnn", 2, width=16), "cpu")
    assert wide(torch.randn(2, 1, 4, 32, 32)).shape == (2, 2)


def test_channels_last_trains_a_3d_video_resnet(tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), model="r3d_18",
                         model_args={"width": 4}, size=(32, 32), frames=4, epochs=1, batch_size=4, threads=1,
                         channels_last=True)
    result = fit(config, log=lambda _m: None)
    assert load_model_file(result.model_path).card.architecture["name"] == "r3d_18"
