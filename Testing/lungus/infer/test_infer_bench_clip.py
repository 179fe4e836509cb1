"""`lungus bench clip` measures the default models end to end and reports clip_seconds_cpu."""

from __future__ import annotations

import json

from lungus.cli import main


def test_bench_clip_reports_seconds_per_clip_on_the_cpu(capsys):
    status = main(
        ["bench", "clip", "--json", "--frames", "8", "--size", "64x64", "--repeat", "1", "--device", "cpu"]
    )
    assert status == 0
    record = json.loads(capsys.readouterr().out)
    rows = record["results"]
    assert [(row["device"], row["segmenter_runtime"]) for row in rows] == [("cpu", "onnx"), ("cpu", "torch")]
    assert record["clip_seconds_cpu"] == rows[0]["median_s"] > 0
    assert all(row["read_s"] > 0 and row["models_s"] > 0 and row["frames"] == 8 for row in rows)
    assert record["models"]["classifier"].startswith("untrained-frame_cnn:")
    assert record["models"]["segmenter"].startswith("untrained-unet_small:")
