"""`lungus bench train` on tiny configs: the record's schema, not its timings."""

from __future__ import annotations

import json

import pytest

from lungus.cli import main

TINY = ["--steps", "1", "--repeat", "1", "--threads", "1", "--no-gpu"]


def run_bench(capsys, *options):
    assert main(["bench", "train", *TINY, *options, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_train_times_both_layouts_of_a_config(capsys, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("task: bline2\nmodel: frame_cnn\nmodel_args: {width: 16}\nsize: [32, 48]\nframes: 4\n"
                      "batch_size: 3\n")
    record = run_bench(capsys, "--config", str(config))
    rows = record["results"]
    assert [(row["device"], row["variant"]) for row in rows] == [("cpu", "contiguous"), ("cpu", "channels_last")]
    for row in rows:
        assert row["batch"] == 3 and row["frames"] == 4 and row["size"] == "32x48"
        assert row["s_per_step"] > 0 and row["clips_per_s"] > 0
    assert rows[0]["speedup"] == 1
    # speed-up comes from the unrounded seconds
    assert rows[1]["speedup"] == pytest.approx(rows[0]["s_per_step"] / rows[1]["s_per_step"], rel=0.02)
    assert record["config"] == str(config) and record["model_args"] == {"width": 16}


def test_bench_train_defaults_to_the_covid_blues_recipe(capsys):
    record = run_bench(capsys, "--batch-size", "1")
    assert record["config"].endswith("covid_blues_bline2.yaml")
    assert record["results"][0]["batch"] == 1 and record["results"][0]["size"] == "64x64"


def test_bench_train_refuses_a_segmenter_config(capsys, tmp_path):
    config = tmp_path / "seg.yaml"
    config.write_text("task: seg\nmodel: unet_small\n")
    assert main(["bench", "train", *TINY, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "segmenter" in err and "seg.yaml" in err
