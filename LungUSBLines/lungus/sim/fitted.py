"""A simulator fit (FIT.json): distributions of simulator settings fitted to real clips' statistics.

`lungus sim-fit` (lungus.sim.fitting) writes it; `lungus simulate --fit` and `lungus realism --fit`
read it with :func:`read_fit`. Each *control* is one simulator setting tied to the clip statistic
(lungus.sim.clip_stats) it moves most:

==================  =====================  ==========================================================
control             statistic              what it sets
==================  =====================  ==========================================================
apex_frac           apex_frac              convex fan: apex row / image height (drawn directly)
top_frac            top_frac               convex fan: start of the centre line / height
bottom_frac         bottom_frac            convex fan: end of the centre line / height
half_angle_deg      half_angle_deg         convex fan: half the opening angle
speckle_lateral     grain_lateral          lateral speckle correlation (scan lines)
speckle_axial       grain_axial            axial speckle correlation (depth samples)
depth_mm            bright_depth           convex probe: imaging depth (so the chest wall's share)
lung_db             depth_slope            the lung's echo under the pleura, its A-, B-lines and
                                           confluent areas, relative to the chest wall (dB added)
attenuation_db      deep_grey              loss over the full depth after TGC
dynamic_range_db    grey_spread            display dynamic range (log-compression window)
gain_db             grey_p50               display gain
motion              temporal_change        scales speckle renewal (tissue, lung), breathing and sliding
artefact_db         grey_p50 (IQR)         B-line and confluent echoes' contrast over the lung haze
                                           (dB added to them alone)
==================  =====================  ==========================================================

A control's statistic is per clip; the joint fit (lungus.sim.fitting) matches its mean over a set
of clips, or with ``over_clips="iqr"`` its interquartile range over them: a set-level, label-free
statistic (how much clips differ in brightness), not a clip's own.

A fit holds, per control, its quantiles at ``LEVELS``; each simulated clip draws every control
from its own quantile function with a random stream of its own (``fit_rng``), so a clip keeps the
designed state the same seed gives without a fit (and, unless the fan geometry is fitted, which
changes the number of scan lines, its anatomy and B-lines too). Without a fit the simulator is
unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungus.errors import LungUSError
from lungus.sim.geometry import ConvexLayout
from lungus.sim.scene import TISSUE_DECORRELATION, ClipScene

FIT_FORMAT = "lungus-sim-fit"
FIT_VERSION = 1
#: Quantile levels every control's distribution is stored at.
LEVELS: tuple[float, ...] = tuple(round(k / 20, 2) for k in range(21))


@dataclass(frozen=True)
class Control:
    """One fitted setting and the statistic it is fitted to. How: with a ``grid``, calibrated alone
    over those values; with a ``step``, fitted jointly with the other such controls (``start``
    is the simulator's typical value, ``step`` the finite difference); with neither, the statistic
    *is* the setting and is taken from the real clips directly."""

    name: str
    statistic: str
    grid: tuple[float, ...] = ()
    low: float = -math.inf  # the simulator's bounds for the setting
    high: float = math.inf
    start: float = 0.0
    step: float | None = None
    over_clips: str = "mean"  # what the joint fit matches over a set of clips: "mean" or "iqr"

    @property
    def direct(self) -> bool:
        return not self.grid and self.step is None


#: In fitting order: the geometry first (it changes what the others measure), then the speckle,
#: the imaging depth, the display's brightness and contrast, and the motion (which clipping at
#: black and white changes).
CONTROLS: tuple[Control, ...] = (
    Control("apex_frac", "apex_frac", high=-0.05),
    Control("top_frac", "top_frac", low=-0.2, high=0.3),
    Control("bottom_frac", "bottom_frac", low=0.6, high=1.3),
    Control("half_angle_deg", "half_angle_deg", low=10.0, high=60.0),
    Control("speckle_lateral", "grain_lateral", (0.5, 1.0, 1.6, 2.5, 3.5), 0.3, 6.0),
    Control("speckle_axial", "grain_axial", (0.2, 0.4, 0.6, 0.9, 1.3), 0.1, 3.0),
    Control("depth_mm", "bright_depth", (50.0, 70.0, 90.0, 115.0, 140.0, 170.0), 30.0, 250.0),
    # The display's brightness: each moves every grey-level statistic, so they are fitted together.
    Control("lung_db", "depth_slope", low=-25.0, high=10.0, start=0.0, step=2.0),
    Control("attenuation_db", "deep_grey", low=-15.0, high=50.0, start=5.0, step=2.0),
    Control("dynamic_range_db", "grey_spread", low=20.0, high=120.0, start=58.0, step=4.0),
    Control("gain_db", "grey_p50", low=-30.0, high=40.0, start=0.0, step=2.0),
    Control("motion", "temporal_change", (0.0, 0.25, 0.5, 0.75, 1.0, 1.5), 0.0, 1.5),
    # Last, so the fits made before it draw their settings from the same uniforms. Fitted with the
    # display's brightness: the B-line and confluent echoes far above the haze make clips with them
    # bright and clips without dark, a spread of brightness over clips (and a cue bound to the
    # label) that real clips do not have.
    Control("artefact_db", "grey_p50", low=-15.0, high=10.0, start=0.0, step=2.0, over_clips="iqr"),
)
CONTROL_NAMES: tuple[str, ...] = tuple(c.name for c in CONTROLS)
_GEOMETRY = ("apex_frac", "top_frac", "bottom_frac", "half_angle_deg", "depth_mm")
_SCENE_FIELDS = ("speckle_lateral", "speckle_axial", "attenuation_db", "gain_db", "dynamic_range_db")


def control(name: str) -> Control:
    return CONTROLS[CONTROL_NAMES.index(name)]


@dataclass(frozen=True)
class SimulatorFit:
    """``settings``: control name -> its quantiles at ``LEVELS`` (non-decreasing); ``record``: the
    rest of FIT.json (what it was fitted on, the statistics, the calibration), kept as read."""

    settings: dict[str, tuple[float, ...]]
    record: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: str | None = None

    def __post_init__(self) -> None:
        for name, quantiles in self.settings.items():
            if name not in CONTROL_NAMES:
                raise ValueError(f"unknown control {name!r} (known: {', '.join(CONTROL_NAMES)})")
            values = np.asarray(quantiles, dtype=float)
            if values.shape != (len(LEVELS),) or not np.isfinite(values).all() or np.any(np.diff(values) < 0):
                raise ValueError(f"control {name!r} needs {len(LEVELS)} finite non-decreasing quantiles")

    @classmethod
    def constant(cls, values: dict[str, float]) -> SimulatorFit:
        """A fit that sets each named control to one value (calibration uses it)."""
        return cls({name: (float(v),) * len(LEVELS) for name, v in values.items()})

    def median(self, name: str) -> float:
        return float(self.settings[name][LEVELS.index(0.5)])

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One clip's settings: every control present drawn from its quantile function. One uniform
        number is drawn per known control, present or not, so a fit's streams do not shift."""
        uniforms = rng.random(len(CONTROLS))
        return {c.name: float(np.interp(u, LEVELS, self.settings[c.name]))
                for c, u in zip(CONTROLS, uniforms) if c.name in self.settings}

    @staticmethod
    def convex_layout(values: dict[str, float]) -> ConvexLayout | None:
        """The fan geometry a clip's drawn settings fix, or None when they fix none."""
        if not any(name in values for name in _GEOMETRY):
            return None
        return ConvexLayout(**{name: values.get(name) for name in _GEOMETRY})

    @staticmethod
    def apply(scene: ClipScene, values: dict[str, float]) -> ClipScene:
        """``scene`` with a clip's drawn settings in place of its own (``motion`` scales the scene's
        own motion, so the designed state still lowers the lung's speckle renewal and sliding; it is
        at most 1.5, so B-lines placed clear of the ribs at the scene's sliding stay nearly clear)."""
        changes: dict[str, Any] = {name: values[name] for name in _SCENE_FIELDS if name in values}
        if "lung_db" in values:
            changes["haze_db"] = scene.haze_db + values["lung_db"]
        if "lung_db" in values or "artefact_db" in values:
            # The artefacts are echoes of the same lung surface: they follow the haze (lung_db), and
            # artefact_db alone sets their contrast over it.
            shift = values.get("lung_db", 0.0) + values.get("artefact_db", 0.0)
            changes["blines"] = [dataclasses.replace(b, gain_db=b.gain_db + shift) for b in scene.blines]
            changes["confluent"] = [dataclasses.replace(c, gain_db=c.gain_db + shift) for c in scene.confluent]
        if "motion" in values:
            scale = values["motion"]
            changes["lung_decorrelation"] = float(min(0.99, scene.lung_decorrelation * scale))
            changes["tissue_decorrelation"] = float(min(0.99, TISSUE_DECORRELATION * scale))
            changes["resp"] = (scene.resp * scale).astype(np.float32)
            changes["sliding"] = (scene.sliding * scale).astype(np.float32)
        return dataclasses.replace(scene, **changes)

    def size_warning(self, height: int, width: int, probe: str) -> str | None:
        """Why simulating (height, width) clips of ``probe`` with this fit is doubtful (its speckle
        sizes are in scan lines and samples, calibrated at its own size and probe), or None."""
        made = self.record.get("simulation") or {}
        size, made_probe = made.get("size"), made.get("probe")
        if size is not None and list(size) != [height, width]:
            return f"the simulator fit {self.path} was made for {size[0]}x{size[1]} clips, not {height}x{width}"
        if made_probe is not None and made_probe != probe:
            return f"the simulator fit {self.path} was made for {made_probe} probes, not {probe}"
        return None

    def to_record(self) -> dict[str, Any]:
        """FIT.json's content."""
        return {"format": FIT_FORMAT, "version": FIT_VERSION, **self.record, "levels": list(LEVELS),
                "settings": {name: [round(float(v), 5) for v in q] for name, q in self.settings.items()}}

    def identity(self) -> dict[str, Any]:
        """What names this fit in a study's record: its file and the SHA-256 of its settings."""
        settings = json.dumps(self.to_record()["settings"], sort_keys=True).encode()
        return {"path": self.path, "settings_sha256": hashlib.sha256(settings).hexdigest()}


def write_fit(fit: SimulatorFit, path: str | os.PathLike) -> Path:
    from lungus.atomic import atomic_write_text

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(fit.to_record(), indent=1) + "\n")
    return target


def read_fit(path: str | os.PathLike) -> SimulatorFit:
    """The SimulatorFit in FIT.json; LungUSError (one line naming the file) for anything else."""
    source = Path(path)
    try:
        record = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LungUSError("simulator fit not found", source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise LungUSError(f"cannot read this simulator fit ({error})", source) from None
    except json.JSONDecodeError as error:
        raise LungUSError(f"not a simulator fit: invalid JSON ({error.msg}, line {error.lineno})", source) from None
    if not isinstance(record, dict) or record.get("format") != FIT_FORMAT:
        raise LungUSError(f"not a simulator fit (no \"format\": \"{FIT_FORMAT}\"; write one with lungus sim-fit)",
                          source)
    if record.get("version") != FIT_VERSION:
        raise LungUSError(f"simulator fit version {record.get('version')!r}, this lungus reads {FIT_VERSION}", source)
    if record.get("levels") != list(LEVELS):
        raise LungUSError(f"simulator fit levels must be {len(LEVELS)} steps of 0.05 from 0 to 1", source)
    settings = record.get("settings")
    if not isinstance(settings, dict) or not settings:
        raise LungUSError("simulator fit has no settings", source)
    rest = {k: v for k, v in record.items() if k not in ("format", "version", "levels", "settings")}
    try:
        return SimulatorFit({str(k): tuple(v) for k, v in settings.items()}, rest, str(source))
    except (TypeError, ValueError) as error:
        raise LungUSError(f"invalid simulator fit: {error}", source) from None
