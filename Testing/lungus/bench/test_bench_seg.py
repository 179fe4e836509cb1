"""`lungus bench seg` on tiny sizes: the record's schema, not its timings."""

from __future__ import annotations

import json
import os

import pytest

from lungus.cli import main

TINY = ["--size", "32", "--frames", "2", "--repeat", "1", "--batches", "1", "2"]


def run_bench(capsys, *options):
    assert main(["bench", "seg", *TINY, *options, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_seg_record_schema(capsys):
    record = run_bench(capsys, "--variants", "eager", "torchscript", "--threads", "1")
    assert record["benchmark"] == "seg" and record["cpu_threads"] == 1
    rows = record["results"]
    assert [(row["variant"], row["batch"]) for row in rows] == [
        ("eager", 1), ("eager", 2), ("torchscript", 1), ("torchscript", 2)]
    for row in rows:
        assert row["device"] == "cpu" and row["size"] == 32 and row["fps"] > 0 and row["threads"] == 1
    assert record["best_cpu_fps_batch1"] == max(row["fps"] for row in rows if row["batch"] == 1)
    assert record["model"]["name"] == "unet_small"
    assert record["target_fps"] == 33.4


def test_bench_seg_onnxruntime_and_default_threads(capsys):
    pytest.importorskip("onnxruntime")
    record = run_bench(capsys, "--variants", "onnxruntime")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert record["threads"] == record["cpu_threads"] == usable  # all usable CPUs unless told
    assert {row["variant"] for row in record["results"]} == {"onnxruntime"}
    assert record["best_cpu_variant_batch1"] == "onnxruntime"


def test_bench_seg_times_a_trained_model_file(capsys, tmp_path):
    from lungus.data.labels.schemes import SEG_CLASSES
    from lungus.models.model_file import ModelCard, save_model_file
    from lungus.models.registry import build_model
    from lungus.train.setup import json_architecture

    model = build_model("unet_small", len(SEG_CLASSES), width=4, levels=3)
    card = ModelCard(task="seg", class_names=[c.name for c in SEG_CLASSES], architecture=json_architecture(model),
                     preprocessing={"size": [32, 32], "frames": None, "target_fps": None, "fan_crop": True,
                                    "normalisation": {"mean": 0.5, "std": 0.25}}, label_source="truth")
    path = save_model_file(tmp_path / "model.pt", model, card)
    record = run_bench(capsys, "--variants", "eager", "--threads", "1", "--model", str(path))
    assert record["model"]["args"]["width"] == 4
    assert len(record["results"]) == 2


def test_bench_seg_rejects_a_tiny_size(capsys):
    assert main(["bench", "seg", "--size", "8"]) == 2
    assert "--size" in capsys.readouterr().err


def test_the_benchmarked_segmenter_is_the_recipe_s(tmp_path):
    from pathlib import Path

    from lungus.bench import seg as seg_bench
    from lungus.train.config import TrainConfig

    recipe = Path(__file__).parents[3] / "Resources" / "recipes" / "sim_seg.yaml"
    config = TrainConfig.from_sources(recipe, manifest=str(tmp_path / "m.csv"), out=str(tmp_path / "run"))
    assert config.task == "seg" and config.model == seg_bench.DEFAULT_MODEL
    assert config.model_args == seg_bench.DEFAULT_ARGS
    assert config.size == (seg_bench.DEFAULT_SIZE, seg_bench.DEFAULT_SIZE)
