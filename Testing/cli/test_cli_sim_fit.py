"""`lungus sim-fit` end to end on a tiny set, and `--fit` in `lungus simulate`; bad input is one line, exit 2."""

from __future__ import annotations

import csv
import json

from lungus.cli import main
from lungus.io import read_clip
from lungus.sim.fitted import read_fit

TINY_FIT = ["--size", "64x64", "--frames", "3", "--calibration-clips", "2", "--check-clips", "2", "--passes", "1",
            "--quiet"]


def test_sim_fit_writes_the_fit_the_figure_and_the_statistics(tiny_collection, tmp_path, capsys):
    fit, figure, stats = tmp_path / "fit.json", tmp_path / "fit.png", tmp_path / "stats.csv"
    argv = ["sim-fit", "--real", str(tiny_collection), "--out", str(fit), "--figure", str(figure),
            "--stats", str(stats), *TINY_FIT]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"sim-fit: 16 real clips of 8 patients -> {fit}"
    assert printed[1].startswith("| statistic | real (n=16) | default (n=2) | fitted (n=2) |")
    record = json.loads(fit.read_text())
    assert record["fitted_on"]["n_clips"] == 16 and set(record["statistics"]) == {"real", "default", "fitted"}
    assert "gain_db" in read_fit(fit).settings
    assert figure.read_bytes()[:4] == b"\x89PNG"
    with open(stats, newline="") as handle:
        groups = [row["group"] for row in csv.DictReader(handle)]
    assert groups.count("real") == 16 and groups.count("fitted") == 2


def test_simulate_draws_the_fan_from_a_fit(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"format": "lungus-sim-fit", "version": 1, "levels": [k / 20 for k in range(21)],
                               "settings": {"half_angle_deg": [21.0] * 21}}))
    out = tmp_path / "set"
    argv = ["simulate", "--out", str(out), "--clips", "2", "--patients", "1", "--frames", "2", "--size", "64x64",
            "--probe", "convex", "--fit", str(fit), "--quiet"]
    assert main(argv) == 0
    for clip in (out / "clips").glob("*.mp4"):
        assert read_clip(clip).fan.angles_deg == (-21.0, 21.0)


def test_a_bad_fit_file_is_one_line_and_exit_2(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    fit.write_text("[]")
    argv = ["simulate", "--out", str(tmp_path / "set"), "--clips", "1", "--patients", "1", "--fit", str(fit), "--quiet"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{fit}: not a simulator fit" in error and "Traceback" not in error


def test_sim_fit_on_a_missing_manifest_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["sim-fit", "--real", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "fit.json"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("lungus sim-fit: error: ") and error.count("\n") == 1
    assert not (tmp_path / "fit.json").exists()
