"""Fit the simulator's settings to real clips' statistics (`lungus sim-fit`; docs/real-clips.md#realism).

1. Every clip of a real manifest is measured with lungus.sim.clip_statistics (NaN rows of clips that
   cannot be read are skipped and counted).
2. The fan-geometry controls (lungus.sim.fitted.CONTROLS that are ``direct``) take the real
   quantiles of their statistic directly.
3. A control with a ``grid`` is *calibrated* alone: a small simulated set (the same seeds each
   time) is made with the control fixed at each value of its grid and everything fitted so far
   drawn from the fit; the median of the control's statistic over that set, against the value,
   is a monotone curve, and the real quantiles of the statistic read through it give the
   control's quantiles. The spread of the statistic that other causes give at a fixed value
   (anatomy, disease, the probe) is taken out of the real spread first, so a fitted set is not
   wider than the real one. The display's brightness controls (a ``step``: the lung's echo,
   attenuation, dynamic range, gain, and the artefacts' contrast over the lung haze) all move
   every grey-level statistic, so they are fitted *together*: damped Newton steps on finite
   differences bring the calibration set's means of four statistics, and the spread over clips
   (IQR) of their grey level, to the real ones (one value each; no label is read).
   ``passes`` repeats the round (later controls change what earlier ones measure).
4. A check set of the default simulator and one of the fitted simulator are measured, so the fit
   says how close it came (FIT.json ``statistics``; the figure of lungus.sim.fit_figure).

Simulated clips are measured after a round trip through the clip format the studies write (mp4),
since its compression smooths speckle and motion a little, as it did the real clips'.

Fit on development clips only: when cross-validating, never on a fold's test patients
(``exclude_fold``).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lungus.errors import LungUSError
from lungus.progress import Progress
from lungus.sim.clip_stats import DEPTH_NAMES, STATISTICS, clip_statistics
from lungus.sim.fitted import CONTROLS, LEVELS, Control, SimulatorFit
from lungus.sim.generator import SimulationConfig, simulate_clip

Rows = list[dict[str, float]]
#: Seed namespaces of the simulated sets: calibration, default check, fitted check.
_CALIBRATION, _CHECK_DEFAULT, _CHECK_FITTED = 0, 1, 2


@dataclass(frozen=True)
class FitConfig:
    """How the simulator is fitted: ``size`` (H, W), ``frames`` and ``probe`` of the simulated clips
    (use the size and probe the fitted simulator will make), ``calibration_clips`` per tried value,
    ``check_clips`` per compared simulator, ``seed``, ``passes`` over the calibrated controls."""

    size: tuple[int, int] = (256, 256)
    frames: int = 6
    probe: str = "convex"
    calibration_clips: int = 48
    check_clips: int = 48
    seed: int = 0
    passes: int = 2

    def __post_init__(self) -> None:
        for name in ("frames", "calibration_clips", "check_clips", "passes"):
            if getattr(self, name) < 1 or (name == "frames" and self.frames < 2):
                raise LungUSError(f"sim-fit: {name} must be at least {2 if name == 'frames' else 1}, "
                                  f"got {getattr(self, name)}")

    def simulation(self, fit: SimulatorFit | None = None) -> SimulationConfig:
        try:
            return SimulationConfig(n_frames=self.frames, height=self.size[0], width=self.size[1], probe=self.probe,
                                    annotations=False, fit=fit)
        except ValueError as error:
            raise LungUSError(f"sim-fit: invalid frames/size/probe: {error}") from None


@dataclass
class RealStatistics:
    """Per-clip statistics of a real manifest's clips, and which could not be measured."""

    manifest: Path
    rows: Rows
    clips: list[str]
    n_patients: int
    skipped: list[str]
    exclude_fold: int | None = None


def real_statistics(manifest_path: str | os.PathLike, exclude_fold: int | None = None,
                    progress: Progress | None = None) -> RealStatistics:
    """Measure every clip of a manifest (but those of fold ``exclude_fold``)."""
    from lungus.data.manifests.manifest import Manifest
    from lungus.io import read_clip

    manifest = Manifest.load(manifest_path)
    folds = manifest.folds()
    if exclude_fold is not None and all(f is None for f in folds):
        raise LungUSError("has no fold column; --exclude-fold needs one (lungus split)", manifest_path)
    keep = [r for r in range(len(manifest)) if exclude_fold is None or folds[r] != exclude_fold]
    names, patient_names = manifest.clips, manifest.patients
    rows, clips, patients, skipped = [], [], set(), []
    for done, r in enumerate(keep, 1):
        path = manifest.clip_path(r)
        try:
            rows.append(clip_statistics(read_clip(path)))
            clips.append(names[r])
            patients.add(patient_names[r])
        except (LungUSError, ValueError):
            skipped.append(str(path))
        if progress is not None:
            progress(done, len(keep), path.name)
    if not rows:
        raise LungUSError(f"none of its {len(keep)} clips could be measured", manifest_path)
    return RealStatistics(Path(manifest_path), rows, clips, len(patients), skipped, exclude_fold)


def simulated_statistics(config: SimulationConfig, n_clips: int, seed: int) -> Rows:
    """Statistics of ``n_clips`` simulated clips (seeds ``seed``*100000 + k), each written as mp4 and
    read back first."""
    from lungus.io import read_clip, write_clip

    rows = []
    with tempfile.TemporaryDirectory(prefix="lungus-sim-fit-") as folder:
        for k in range(n_clips):
            sim = simulate_clip(config, seed=seed * 100000 + k)
            path = write_clip(sim.clip, Path(folder) / "clip.mp4")
            stored = read_clip(path, fan=False)
            stored.fan = sim.clip.fan
            rows.append(clip_statistics(stored))
    return rows


def column(rows: Rows, name: str) -> np.ndarray:
    """The finite values of one statistic over ``rows``."""
    values = np.array([row[name] for row in rows], dtype=float)
    return values[np.isfinite(values)]


def _robust_std(values: np.ndarray) -> float:
    if values.size < 2:
        return 0.0
    q25, q75 = np.percentile(values, [25, 75])
    return float((q75 - q25) / 1.349)


def iqr(values: np.ndarray) -> float:
    """The interquartile range of ``values``."""
    q25, q75 = np.percentile(values, [25, 75])
    return float(q75 - q25)


#: What a joint control's ``over_clips`` matches over a set of clips.
_OVER_CLIPS: dict[str, Callable[[np.ndarray], float]] = {"mean": lambda v: float(np.mean(v)), "iqr": iqr}


def joint_target(control: Control) -> str:
    """The name of what the joint fit matches for ``control``: its statistic, or e.g. ``grey_p50 iqr``."""
    return control.statistic if control.over_clips == "mean" else f"{control.statistic} {control.over_clips}"


def over_clips(control: Control, rows: Rows) -> float:
    """``control``'s statistic summarised over ``rows`` as the joint fit matches it."""
    return _OVER_CLIPS[control.over_clips](column(rows, control.statistic))


def summarise(rows: Rows) -> dict[str, dict[str, Any]]:
    """Per statistic: n, mean, std, and the quantiles at LEVELS (None where no clip has a value)."""
    summary: dict[str, dict[str, Any]] = {}
    for name in (*STATISTICS, *DEPTH_NAMES):
        values = column(rows, name)
        if values.size == 0:
            summary[name] = {"n": 0, "mean": None, "std": None, "quantiles": None}
            continue
        summary[name] = {"n": int(values.size), "mean": round(float(values.mean()), 5),
                         "std": round(float(values.std()), 5),
                         "quantiles": [round(float(q), 5) for q in np.quantile(values, LEVELS)]}
    return summary


#: A directly drawn setting spans the real clips' 2.5th to 97.5th percentiles: a few fans that
#: detection got wrong do not become simulated geometry.
_DIRECT_RANGE = (0.025, 0.975)


def _direct_quantiles(control: Control, real: np.ndarray) -> tuple[float, ...]:
    levels = np.clip(LEVELS, *_DIRECT_RANGE)
    return tuple(float(v) for v in np.clip(np.quantile(real, levels), control.low, control.high))


def _invert(control: Control, medians: np.ndarray, spread_at_fixed: float, real: np.ndarray
            ) -> tuple[tuple[float, ...], float]:
    """The control's quantiles that give the real quantiles of its statistic through the calibration
    curve (grid values -> medians), and the share of real clips beyond the curve's reach."""
    grid = np.asarray(control.grid, dtype=float)
    if np.corrcoef(grid, medians)[0, 1] < 0:  # the statistic falls as the setting rises
        grid, medians = grid[::-1], medians[::-1]
    curve = np.maximum.accumulate(medians) + 1e-9 * np.arange(medians.size)
    centre = float(np.median(real))
    real_spread = _robust_std(real)
    shrink = math.sqrt(max(0.0, 1.0 - (spread_at_fixed / real_spread) ** 2)) if real_spread > 0 else 0.0
    targets = centre + (np.quantile(real, LEVELS) - centre) * shrink
    values = np.sort(np.clip(np.interp(targets, curve, grid), control.low, control.high))
    beyond = float(np.mean((real < curve[0]) | (real > curve[-1])))
    return tuple(float(v) for v in values), beyond


def _medians(settings: dict[str, tuple[float, ...]], fixed: dict[str, float], statistics: list[str],
             config: FitConfig, centres: list[Callable[[np.ndarray], float]] | None = None
             ) -> tuple[np.ndarray, Rows]:
    """Each statistic's ``centres`` (the median) over the calibration set made with ``settings``
    and ``fixed`` values."""
    trial = SimulatorFit({**settings, **{name: (float(v),) * len(LEVELS) for name, v in fixed.items()}})
    rows = simulated_statistics(config.simulation(trial), config.calibration_clips, config.seed * 10 + _CALIBRATION)
    centres = centres or [np.median] * len(statistics)
    medians = np.array([float(centre(column(rows, s))) if column(rows, s).size else math.nan
                        for s, centre in zip(statistics, centres)])
    if not np.isfinite(medians).all():
        raise LungUSError(f"sim-fit: the simulator gave no {', '.join(statistics)} to calibrate with")
    return medians, rows


def _calibrate(control: Control, settings: dict[str, tuple[float, ...]], real: np.ndarray, config: FitConfig
               ) -> tuple[tuple[float, ...], dict[str, Any]]:
    """A grid control's quantiles (step 3 of the module docstring) and its calibration record."""
    medians, spreads = [], []
    for value in control.grid:
        median, rows = _medians(settings, {control.name: value}, [control.statistic], config)
        medians.append(float(median[0]))
        spreads.append(_robust_std(column(rows, control.statistic)))
    medians_array = np.array(medians)
    nearest = int(np.argmin(np.abs(medians_array - np.median(real))))
    quantiles, beyond = _invert(control, medians_array, spreads[nearest], real)
    return quantiles, {"statistic": control.statistic, "grid": list(control.grid),
                       "medians": [round(m, 5) for m in medians], "beyond_reach": round(beyond, 4)}


#: Newton steps of the joint fit, and the largest change of a setting per step, in its ``step``s.
_JOINT_ITERATIONS = 4
_JOINT_MAX_STEPS = 4.0


def _fit_jointly(controls: list[Control], settings: dict[str, tuple[float, ...]], real: Rows, config: FitConfig
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """Values of ``controls`` whose calibration-set means (or IQRs, by ``over_clips``) of their
    statistics match the real ones: damped Newton steps on finite differences, each residual in
    units of the statistic's real spread. Means, not medians: the simulator's grey levels can be
    bimodal over clips (a dark aerated lung, a bright one full of B-lines), and a median in the gap
    between the modes jumps with the mix of states; the IQR is what closes that gap."""
    names, statistics = [c.name for c in controls], [c.statistic for c in controls]
    target = np.array([over_clips(c, real) for c in controls])
    scale = np.array([max(_robust_std(column(real, s)), 1e-6) for s in statistics])
    centres = [_OVER_CLIPS[c.over_clips] for c in controls]
    low, high = np.array([c.low for c in controls]), np.array([c.high for c in controls])
    steps = np.array([c.step for c in controls])
    theta = np.array([float(np.median(settings[n])) if n in settings else c.start for n, c in zip(names, controls)])

    def at(values: np.ndarray) -> np.ndarray:
        return _medians(settings, dict(zip(names, values)), statistics, config, centres)[0]

    def misfit(medians: np.ndarray) -> float:
        return float(np.linalg.norm((medians - target) / scale))

    medians = at(theta)
    history = [round(misfit(medians), 4)]
    for _ in range(_JOINT_ITERATIONS):
        jacobian = np.column_stack([(at(theta + np.eye(len(theta))[i] * steps[i]) - medians) / steps[i]
                                    for i in range(len(theta))])
        # In units of each setting's step and of each statistic's real spread; a little ridge keeps
        # near-collinear settings (a darker lung, more attenuation) from running off together.
        scaled = jacobian * steps[None, :] / scale[:, None]
        normal = scaled.T @ scaled
        ridge = 0.05 * float(np.trace(normal)) / len(theta) * np.eye(len(theta))
        units = np.linalg.solve(normal + ridge, scaled.T @ ((target - medians) / scale))
        # The whole step shrunk (not each setting clipped), so it keeps its direction.
        units *= min(1.0, _JOINT_MAX_STEPS / max(float(np.max(np.abs(units))), 1e-9))
        delta = units * steps
        for damping in (1.0, 0.5, 0.25):
            candidate = np.clip(theta + damping * delta, low, high)
            candidate_medians = at(candidate)
            if misfit(candidate_medians) < misfit(medians):
                theta, medians = candidate, candidate_medians
                break
        else:
            break  # no step helps: as close as these settings get
        history.append(round(misfit(medians), 4))
    return theta, {"controls": names, "statistics": [joint_target(c) for c in controls], "values": [round(float(v), 4) for v in theta],
                   "target": [round(float(v), 4) for v in target], "achieved": [round(float(v), 4) for v in medians],
                   "misfit_history": history}


def fit_simulator(real: RealStatistics, config: FitConfig | None = None,
                  log: Callable[[str], None] = lambda _message: None) -> tuple[SimulatorFit, dict[str, Rows]]:
    """The fit (module docstring) and the per-clip statistics it was judged on: ``real``, ``default``
    (the simulator without a fit) and ``fitted`` (with it)."""
    from lungus.sim.fingerprint import simulator_fingerprint

    config = config or FitConfig()
    settings: dict[str, tuple[float, ...]] = {}
    for control in CONTROLS:
        values = column(real.rows, control.statistic)
        if control.direct and values.size:
            settings[control.name] = _direct_quantiles(control, values)
    calibration: dict[str, dict[str, Any]] = {}
    joint = [c for c in CONTROLS if c.step is not None and column(real.rows, c.statistic).size]
    for round_ in range(config.passes):
        for control in CONTROLS:
            values = column(real.rows, control.statistic)
            if control.grid and values.size:
                settings[control.name], calibration[control.name] = _calibrate(control, settings, values, config)
                calibration[control.name]["pass"] = round_ + 1
                log(f"pass {round_ + 1}: {control.name} median {np.median(settings[control.name]):.3g} "
                    f"({control.statistic}: real median {np.median(values):.3g}, simulator "
                    f"{min(calibration[control.name]['medians']):.3g}..{max(calibration[control.name]['medians']):.3g})")
            elif joint and control is joint[0]:
                found, calibration["joint"] = _fit_jointly(joint, settings, real.rows, config)
                settings.update({c.name: (v,) * len(LEVELS) for c, v in zip(joint, found)})
                calibration["joint"]["pass"] = round_ + 1
                log(f"pass {round_ + 1}: " + ", ".join(f"{c.name} {v:.3g}" for c, v in zip(joint, found))
                    + " (" + ", ".join(f"{joint_target(c)} {a:.3g} for {t:.3g}" for c, a, t in zip(
                        joint, calibration["joint"]["achieved"], calibration["joint"]["target"])) + ")")
    fit = SimulatorFit(settings)
    log(f"measuring {config.check_clips} clips of the default and of the fitted simulator")
    rows = {"real": real.rows,
            "default": simulated_statistics(config.simulation(), config.check_clips, config.seed * 10 + _CHECK_DEFAULT),
            "fitted": simulated_statistics(config.simulation(fit), config.check_clips, config.seed * 10 + _CHECK_FITTED)}
    record = {
        "fitted_on": {"manifest": str(real.manifest), "n_clips": len(real.rows), "n_patients": real.n_patients,
                      "skipped": len(real.skipped), "exclude_fold": real.exclude_fold},
        "simulation": {**asdict(config), "size": list(config.size)},
        "simulator": simulator_fingerprint(),
        "calibration": calibration,
        "statistics": {name: summarise(group) for name, group in rows.items()},
    }
    return replace(fit, record=record), rows


def statistics_table(rows: dict[str, Rows], names: tuple[str, ...] = STATISTICS) -> str:
    """A markdown table: per statistic the median [IQR] of each group of ``rows``."""
    groups = list(rows)
    lines = ["| statistic | " + " | ".join(f"{g} (n={len(rows[g])})" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name in names:
        cells = []
        for group in groups:
            values = column(rows[group], name)
            if values.size == 0:
                cells.append("n/a")
                continue
            q25, q50, q75 = np.percentile(values, [25, 50, 75])
            digits = 1 if abs(q50) >= 10 else 3
            cells.append(f"{q50:.{digits}f} [{q25:.{digits}f}, {q75:.{digits}f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
