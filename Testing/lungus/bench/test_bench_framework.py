"""The benchmark framework and `lungus bench simulate` (runs only; no timing asserts)."""

from __future__ import annotations

import json

import cv2

from lungus.bench import available, format_table, measure, pinned_threads
from lungus.cli import main

TINY = ["--size", "48", "--frames", "2", "--clips", "1", "--repeat", "1"]


def test_simulate_is_a_registered_benchmark():
    benchmarks = available()
    assert "simulate" in benchmarks
    assert benchmarks["simulate"].HELP


def test_bench_without_a_name_lists_the_benchmarks(capsys):
    assert main(["bench"]) == 0
    assert "simulate" in capsys.readouterr().out


def test_bench_simulate_json_has_machine_command_and_results(capsys):
    assert main(["bench", "simulate", *TINY, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["benchmark"] == "simulate" and record["threads"] == 1
    assert record["command"].startswith("lungus bench simulate")
    assert record["machine"]["cpu"] and record["machine"]["logical_cpus"] >= 1
    assert [row["probe"] for row in record["results"]] == ["convex", "linear"]
    assert all(row["fps"] > 0 and row["frames"] == 2 for row in record["results"])
    assert record["fps"] == min(row["fps"] for row in record["results"])


def test_bench_simulate_text_is_a_table(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "simulate", *TINY, "--probe", "linear", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "probe" in text and "fps" in text and "linear" in text
    assert json.loads(out.read_text())["results"][0]["probe"] == "linear"


def test_unknown_benchmark_exits_2(capsys):
    assert main(["bench", "no-such-bench"]) == 2
    assert "simulate" in capsys.readouterr().err


def test_pinned_threads_restores_opencv_threads():
    before = cv2.getNumThreads()
    with pinned_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before


def test_measure_times_each_repeat():
    calls = []
    timing = measure(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and len(timing.seconds) == 3 and timing.best <= timing.median


def test_format_table_lists_rows_and_summary():
    record = {
        "benchmark": "demo", "command": "x", "threads": 1, "date": "d", "lungus": "0",
        "machine": {"cpu": "CPU", "usable_cpus": 2},
        "results": [{"variant": "a", "fps": 12.5}, {"variant": "b", "fps": 100.0}],
        "best": 100.0,
    }  # fmt: skip
    text = format_table(record)
    assert "variant" in text and "12.5" in text and "best: 100.0" in text
