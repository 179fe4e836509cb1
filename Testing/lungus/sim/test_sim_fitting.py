"""lungus.sim.fitting: the fit moves simulated statistics toward the real ones; which real clips count."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.sim.fitted import SimulatorFit
from lungus.sim.fitting import (
    FitConfig,
    RealStatistics,
    column,
    fit_simulator,
    iqr,
    real_statistics,
    simulated_statistics,
)

TINY = FitConfig(size=(64, 64), frames=3, calibration_clips=8, check_clips=8, passes=1, seed=1)


@pytest.fixture(scope="module")
def fitted_to_brighter_narrower_clips():
    """'Real' clips: the simulator at +10 dB gain with a 44-degree fan; the fit made on them."""
    target = SimulatorFit.constant({"gain_db": 10.0, "half_angle_deg": 22.0})
    rows = simulated_statistics(TINY.simulation(target), 8, seed=77)
    real = RealStatistics(Path("real.csv"), rows, [f"c{k}" for k in range(8)], 4, [])
    return fit_simulator(real, TINY)


@pytest.mark.parametrize("statistic", ["grey_p50", "half_angle_deg"])
def test_the_fitted_simulator_is_closer_to_the_real_clips_than_the_default(fitted_to_brighter_narrower_clips,
                                                                           statistic):
    _, groups = fitted_to_brighter_narrower_clips
    real, default, fitted = (np.median(column(groups[g], statistic)) for g in ("real", "default", "fitted"))
    assert abs(fitted - real) < 0.5 * abs(default - real)


def test_the_fit_records_what_it_was_fitted_on_and_its_calibration(fitted_to_brighter_narrower_clips):
    fit, _ = fitted_to_brighter_narrower_clips
    assert fit.record["fitted_on"]["n_clips"] == 8 and fit.record["fitted_on"]["n_patients"] == 4
    joint = fit.record["calibration"]["joint"]
    assert joint["controls"][joint["statistics"].index("grey_p50")] == "gain_db"
    assert len(joint["achieved"]) == len(joint["target"]) == len(joint["values"])
    assert set(fit.record["statistics"]) == {"real", "default", "fitted"}


def test_the_artefacts_contrast_is_fitted_to_the_real_spread_of_grey_level_over_clips(
        fitted_to_brighter_narrower_clips):
    fit, groups = fitted_to_brighter_narrower_clips
    joint = fit.record["calibration"]["joint"]
    k = joint["controls"].index("artefact_db")
    assert joint["statistics"][k] == "grey_p50 iqr"
    assert joint["target"][k] == pytest.approx(iqr(column(groups["real"], "grey_p50")), abs=1e-3)
    assert "artefact_db" in fit.settings


def copy_manifest(source: Path, target: Path, change) -> Path:
    with open(source, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [change(k, {**row, "clip": str(source.parent / row["clip"])}) for k, row in enumerate(rows)]
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


def test_an_unreadable_clip_is_skipped_and_counted(tiny_collection, tmp_path):
    def first_gone(k, row):
        return {**row, "clip": row["clip"].replace(".mp4", "-gone.mp4")} if k == 0 else row

    measured = real_statistics(copy_manifest(tiny_collection, tmp_path / "m.csv", first_gone))
    assert len(measured.rows) == 15 and len(measured.skipped) == 1 and measured.skipped[0].endswith("-gone.mp4")


def test_exclude_fold_leaves_out_that_folds_clips(tiny_collection, tmp_path):
    def in_folds(k, row):
        return {**row, "fold": str(k % 4)}

    measured = real_statistics(copy_manifest(tiny_collection, tmp_path / "m.csv", in_folds), exclude_fold=2)
    assert len(measured.rows) == 12 and measured.exclude_fold == 2


def test_exclude_fold_without_a_fold_column_is_refused(tiny_collection):
    with pytest.raises(LungUSError, match="no fold column"):
        real_statistics(tiny_collection, exclude_fold=0)
