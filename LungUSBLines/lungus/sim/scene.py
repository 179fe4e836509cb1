"""What one simulated clip shows: anatomy, artefacts and their motion, in beam space.

A :class:`ClipScene` is drawn at random from a patient's traits and a designed severity
state; :mod:`lungus.sim.render` turns it into frames and masks. Units are beam-space
samples (depth, row) and scan lines (lateral, column); echo levels are in dB relative
to ordinary soft tissue.

Designed states (the clip's truth labels are *measured* from the rendered masks by the
rules in :mod:`lungus.data.labels.bline_rules`, so a design and its labels cannot disagree):

0. aerated lung: pleural line with sliding, A-lines, no B-lines;
1. 1-5 discrete B-lines that come and go, weaker A-lines, mildly irregular pleura;
2. a confluent area covering 25-45 % of the intercostal space and/or a small
   sub-pleural consolidation, plus a few discrete B-lines; thickened pleura;
3. white lung (confluent over 60-95 % of the intercostal space) or a large
   consolidation, with little sliding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lungus.sim.geometry import ProbeGeometry
from lungus.sim.traits import ZONE_SEVERITY_SHIFT, PatientTraits

#: Per frame, the share of fresh speckle in tissue (a fit may change it: lungus.sim.fitted).
TISSUE_DECORRELATION = 0.2
# Designed-state thresholds on a clip's latent severity (patient severity + zone + noise).
STATE_THRESHOLDS = (0.32, 0.55, 0.78)


@dataclass(frozen=True)
class Rib:
    """A rib in view: the bright curved surface and the acoustic shadow under it."""

    center: float  # line (may lie outside the field of view)
    half_width: float  # lines
    top: float  # sample of the rib surface at its centre
    edge: float  # lines over which the shadow fades in at its sides


@dataclass
class BLineSpec:
    """A discrete B-line: a narrow bright band from the pleura down, sliding with the lung."""

    center: float  # line at rest
    half_width: float  # lines, half the full width at half maximum
    gain_db: float  # peak echo level
    visibility: np.ndarray  # (T,) 0 (gone) .. 1 (fully there)


@dataclass
class ConfluentSpec:
    """Confluent B-lines ("white lung"): a wide bright sector with merged ridges."""

    center: float
    half_width: float
    gain_db: float
    visibility: np.ndarray  # (T,)
    breathing: float  # relative change of the width over a breath


@dataclass(frozen=True)
class ConsolidationSpec:
    """A hypoechoic, tissue-like region under the pleura with a shredded deep border."""

    center: float
    half_width: float  # lines
    depth: float  # samples, at the centre
    depth_mm: float


@dataclass
class ClipScene:
    probe: ProbeGeometry
    zone: str
    state: int  # designed state 0..3
    n_frames: int
    fps: float
    pleura: np.ndarray  # (lines,) depth sample of the pleural line
    pleura_sigma: float  # samples (Gaussian sigma of the line's thickness)
    pleura_db: float
    pleura_texture: float  # 0 smooth .. 1 fragmented brightness along the line
    skin_samples: float
    fat_fraction: float
    ribs: tuple[Rib, ...]
    blines: list[BLineSpec]
    confluent: list[ConfluentSpec]
    consolidation: ConsolidationSpec | None
    a_line_db: float  # contrast of the first A-line over the lung haze
    a_line_decay_db: float  # contrast lost per further reverberation
    haze_db: float  # lung haze just under the pleura
    haze_decay_db: float  # its loss over the full depth
    speckle_lateral: float  # lines
    speckle_axial: float  # samples
    lung_decorrelation: float  # 0..1 per frame: speckle shimmer under the pleura
    resp: np.ndarray  # (T,) downward tissue displacement at the pleura, samples
    sliding: np.ndarray  # (T,) lateral lung displacement, lines
    gain_db: float
    dynamic_range_db: float
    tgc_db: np.ndarray  # (samples,) depth gain curve
    attenuation_db: float  # residual loss over the full depth after TGC
    annotations: bool
    meta: dict = field(default_factory=dict)
    tissue_decorrelation: float = TISSUE_DECORRELATION  # 0..1 per frame: speckle shimmer in tissue

    @property
    def pleura_depth_mm(self) -> float:
        return float(np.median(self.pleura)) * self.probe.mm_per_sample


def smooth_noise(rng: np.random.Generator, n: int, correlation: float) -> np.ndarray:
    """Zero-mean, unit-variance 1-D noise correlated over about ``correlation`` samples."""
    pad = int(3 * correlation) + 1
    white = rng.standard_normal(n + 2 * pad)
    x = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (x / max(correlation, 1e-3)) ** 2)
    smooth = np.convolve(white, kernel / np.sqrt(np.sum(kernel**2)), mode="valid")
    return smooth[:n]


def visibility_track(rng: np.random.Generator, n_frames: int, duty: float, fps: float) -> np.ndarray:
    """A 0..1 on/off track that is on for about ``duty`` of the frames, fading in and out
    over a few frames (B-lines come and go as the lung slides under the probe)."""
    if duty >= 0.999:
        return np.ones(n_frames, dtype=np.float32)
    correlation = max(2.0, 0.35 * fps)  # on/off episodes last about a second
    noise = smooth_noise(rng, n_frames, correlation)
    threshold = np.quantile(noise, 1.0 - duty) if n_frames > 1 else (0.0 if duty >= 0.5 else 1.0)
    track = 1.0 / (1.0 + np.exp(-(noise - threshold) / 0.15))
    return track.astype(np.float32)


def latent_state(traits: PatientTraits, zone: str, rng: np.random.Generator) -> int:
    """The designed state of one clip: patient severity + zone + clip noise, thresholded."""
    latent = traits.severity + ZONE_SEVERITY_SHIFT.get(zone, 0.0) + rng.normal(0.0, 0.17)
    return int(np.searchsorted(STATE_THRESHOLDS, latent))


def _intercostal_range(ribs: tuple[Rib, ...], lines: int) -> tuple[float, float]:
    """Lines between the rib shadows (the visible pleura)."""
    left, right = 0.0, float(lines - 1)
    for rib in ribs:
        if rib.center < lines / 2:
            left = max(left, rib.center + rib.half_width)
        else:
            right = min(right, rib.center - rib.half_width)
    return left, right


def _place(
    rng: np.random.Generator,
    half_widths: list[float],
    low: float,
    high: float,
    taken: list[tuple[float, float]],
    gap: float,
) -> list[tuple[float, float]]:
    """Centres for bands of the given half-widths in [low, high], keeping ``gap`` lines
    clear of each other and of ``taken`` (start, end) intervals. Bands that do not fit
    are dropped."""
    placed: list[tuple[float, float]] = []
    occupied = list(taken)
    for half in half_widths:
        for _ in range(40):
            if high - low <= 2 * half:
                break
            center = rng.uniform(low + half, high - half)
            start, end = center - half, center + half
            if all(end + gap <= s or start - gap >= e for s, e in occupied):
                placed.append((center, half))
                occupied.append((start, end))
                break
    return placed


@dataclass(frozen=True)
class _ArtefactRoom:
    """Where artefacts may go: kept clear of the rib shadows even at full sliding."""

    low: float  # intercostal range narrowed by the margin
    high: float
    margin: float  # the largest sliding plus 3 lines
    intercostal_width: float
    slide_max: float
    gap: float = 3.0  # lines kept clear between two artefacts


def sample_scene(
    traits: PatientTraits,
    probe: ProbeGeometry,
    zone: str,
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    state: int | None = None,
    annotations: bool = True,
) -> ClipScene:
    """Draw everything one clip shows. ``state`` (0..3) forces the designed state."""
    if state is None:
        state = latent_state(traits, zone, rng)
    # The steps draw from rng in this order; keep it, or every simulated set changes.
    pleura_mean, pleura, pleura_sigma = _pleural_line(traits, probe, state, rng)
    ribs = _ribs(traits, probe, pleura_mean, rng)
    resp, sliding = _breathing(traits, probe, state, n_frames, fps, pleura_mean, rng)
    room = _artefact_room(ribs, probe.beam_shape[1], sliding)
    confluent, consolidation, taken = [], None, []
    if state in (2, 3):
        confluent, consolidation, taken = _confluence_or_consolidation(
            probe, state, n_frames, fps, pleura_mean, room, rng
        )
    blines = _discrete_blines(traits, probe, state, n_frames, fps, room, taken, rng)
    a_line_db = {0: 10.0, 1: 7.5, 2: 5.0, 3: 3.5}[state] + rng.uniform(-1.5, 1.5)
    tgc = _tgc_curve(probe.beam_shape[0], rng)
    return ClipScene(
        probe=probe,
        zone=zone,
        state=int(state),
        n_frames=n_frames,
        fps=float(fps),
        pleura=pleura.astype(np.float32),
        pleura_sigma=float(pleura_sigma),
        ribs=ribs,
        blines=blines,
        confluent=confluent,
        consolidation=consolidation,
        a_line_db=float(a_line_db),
        resp=resp,
        sliding=sliding,
        tgc_db=tgc,
        annotations=annotations,
        **_echo_settings(traits, probe, state, rng),
    )


def _pleural_line(
    traits: PatientTraits, probe: ProbeGeometry, state: int, rng: np.random.Generator
) -> tuple[float, np.ndarray, float]:
    """Pleural line: at the chest-wall depth, gently curved and irregular; thicker and
    more fragmented when diseased. Returns its mean depth, its depth per line and its sigma."""
    samples, lines = probe.beam_shape
    mm = probe.mm_per_sample
    pleura_mean = min(traits.chest_wall_mm / mm, 0.45 * samples)
    roughness = (0.4 + 0.6 * state) / mm * 0.5
    pleura = (
        pleura_mean
        + rng.uniform(-1.5, 1.5) / mm * np.linspace(-1, 1, lines) ** 2
        + roughness * smooth_noise(rng, lines, correlation=lines / rng.uniform(6, 14))
    )
    pleura_sigma = max(1.0, rng.uniform(0.6, 0.9) * (1.0 + 0.25 * state) / mm)
    return pleura_mean, pleura, pleura_sigma


def _ribs(
    traits: PatientTraits, probe: ProbeGeometry, pleura_mean: float, rng: np.random.Generator
) -> tuple[Rib, ...]:
    """Ribs: usually one at each side ("bat sign"); sometimes one or none."""
    lines = probe.beam_shape[1]
    mm = probe.mm_per_sample
    ribs = []
    n_ribs = int(rng.choice([0, 1, 2], p=[0.12, 0.23, 0.65]))
    sides = [0, 1] if n_ribs == 2 else list(rng.choice([0, 1], size=n_ribs, replace=False))
    for side in sides:
        half = (
            traits.rib_width_frac * lines * rng.uniform(0.85, 1.2) * (1.4 if probe.kind == "linear" else 1.0)
        )
        offset = rng.uniform(-0.6, 0.25) * half
        center = offset if side == 0 else (lines - 1) - offset
        top = pleura_mean - rng.uniform(3.0, 7.0) / mm
        ribs.append(Rib(center=float(center), half_width=float(half), top=float(max(top, 2.0)), edge=1.5))
    return tuple(ribs)


def _breathing(
    traits: PatientTraits,
    probe: ProbeGeometry,
    state: int,
    n_frames: int,
    fps: float,
    pleura_mean: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Breathing and sliding, in phase: (T,) downward displacement (samples) and lateral
    sliding (lines); the lung slides less when diseased."""
    time_s = np.arange(n_frames) / fps
    phase = rng.uniform(0, 2 * math.pi)
    rate = traits.resp_rate_hz * rng.uniform(0.9, 1.1)
    wave = np.sin(2 * math.pi * rate * time_s + phase)
    resp = (traits.resp_amplitude_mm / probe.mm_per_sample * wave).astype(np.float32)
    slide_amp = traits.sliding_mm * (1.0 - 0.25 * state) / probe.mm_per_line(pleura_mean)
    return resp, (slide_amp * wave).astype(np.float32)


def _artefact_room(ribs: tuple[Rib, ...], lines: int, sliding: np.ndarray) -> _ArtefactRoom:
    low, high = _intercostal_range(ribs, lines)
    slide_max = float(np.max(np.abs(sliding))) if sliding.size else 0.0
    margin = slide_max + 3.0
    return _ArtefactRoom(low + margin, high - margin, margin, max(high - low, 1.0), slide_max)


def _confluence_or_consolidation(
    probe: ProbeGeometry,
    state: int,
    n_frames: int,
    fps: float,
    pleura_mean: float,
    room: _ArtefactRoom,
    rng: np.random.Generator,
) -> tuple[list[ConfluentSpec], ConsolidationSpec | None, list[tuple[float, float]]]:
    """States 2 and 3: a confluent area, a consolidation, or both (smaller in state 2).

    Returns them and the lateral intervals they take (discrete B-lines keep clear of them)."""
    kind = rng.choice(
        ["confluent", "consolidation", "both"], p=[0.5, 0.2, 0.3] if state == 2 else [0.55, 0.15, 0.3]
    )
    confluent: list[ConfluentSpec] = []
    consolidation: ConsolidationSpec | None = None
    taken: list[tuple[float, float]] = []
    if kind in ("confluent", "both"):
        confluent = _confluent_area(state, n_frames, fps, room, taken, rng)
    if kind in ("consolidation", "both"):
        consolidation = _consolidation(probe, state, pleura_mean, room, taken, kind == "both", rng)
    return confluent, consolidation, taken


def _confluent_area(
    state: int,
    n_frames: int,
    fps: float,
    room: _ArtefactRoom,
    taken: list[tuple[float, float]],
    rng: np.random.Generator,
) -> list[ConfluentSpec]:
    """Confluent B-lines over 26-45 % (state 2) or 62-95 % (state 3) of the intercostal space;
    adds the interval they sweep while sliding to ``taken``."""
    share = rng.uniform(0.26, 0.45) if state == 2 else rng.uniform(0.62, 0.95)
    half = 0.5 * share * room.intercostal_width
    placed = _place(rng, [half], room.low - room.margin + 1.0, room.high + room.margin - 1.0, taken, room.gap)
    confluent = []
    for center, h in placed:
        duty = 1.0 if rng.random() < 0.7 else rng.uniform(0.8, 0.95)
        confluent.append(
            ConfluentSpec(
                center=center,
                half_width=h,
                gain_db=float(rng.uniform(7.0, 11.0)),
                visibility=visibility_track(rng, n_frames, duty, fps),
                breathing=float(rng.uniform(0.0, 0.05)),
            )
        )
        taken.append((center - h - room.slide_max, center + h + room.slide_max))
    return confluent


def _consolidation(
    probe: ProbeGeometry,
    state: int,
    pleura_mean: float,
    room: _ArtefactRoom,
    taken: list[tuple[float, float]],
    beside_confluence: bool,
    rng: np.random.Generator,
) -> ConsolidationSpec | None:
    """A small (state 2) or large (state 3) sub-pleural consolidation; adds its interval to
    ``taken``. Beside a confluent area it may sit inside it when it does not fit next to it."""
    samples, mm = probe.beam_shape[0], probe.mm_per_sample
    if state == 2:
        depth_mm = rng.uniform(4.0, 10.0)
        half = rng.uniform(0.08, 0.16) * room.intercostal_width
    else:
        depth_mm = rng.uniform(15.0, 35.0)
        half = rng.uniform(0.18, 0.32) * room.intercostal_width
    depth = min(depth_mm / mm, 0.45 * (samples - pleura_mean))
    placed = _place(rng, [half], room.low, room.high, taken, room.gap)
    if not placed and beside_confluence:
        placed = _place(rng, [half], room.low, room.high, [], room.gap)  # may sit inside the white lung
    if not placed:
        return None
    center, h = placed[0]
    taken.append((center - h, center + h))
    return ConsolidationSpec(center=center, half_width=h, depth=float(depth), depth_mm=float(depth * mm))


def _discrete_count(traits: PatientTraits, state: int, rng: np.random.Generator) -> int:
    """Discrete B-lines of a clip: 0-2 beside confluence or consolidation, 1-5 in state 1."""
    if state in (2, 3):
        return int(rng.integers(0, 3))
    if state == 1:
        return int(min(5, 1 + rng.poisson(0.8 + 2.0 * traits.severity)))
    return 0


def _discrete_blines(
    traits: PatientTraits,
    probe: ProbeGeometry,
    state: int,
    n_frames: int,
    fps: float,
    room: _ArtefactRoom,
    taken: list[tuple[float, float]],
    rng: np.random.Generator,
) -> list[BLineSpec]:
    """Discrete B-lines clear of ``taken`` (widened by the sliding); the first of a discrete
    clip is there most of the time, the others come and go."""
    n_discrete = _discrete_count(traits, state, rng)
    if not n_discrete:
        return []
    lines = probe.beam_shape[1]
    halves = [float(max(2.0, lines * rng.uniform(0.014, 0.032))) for _ in range(n_discrete)]
    clear_of = [(s - room.slide_max, e + room.slide_max) for s, e in taken]
    placed = _place(rng, halves, room.low, room.high, clear_of, room.gap)
    blines = []
    for i, (center, h) in enumerate(placed):
        duty = rng.uniform(0.8, 1.0) if i == 0 else rng.uniform(0.3, 1.0)
        blines.append(
            BLineSpec(
                center=center,
                half_width=h,
                gain_db=float(rng.uniform(9.0, 14.0)),
                visibility=visibility_track(rng, n_frames, duty, fps),
            )
        )
    return blines


def _tgc_curve(samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples,) depth gain curve in dB: four random knots, interpolated."""
    tgc_knots = rng.normal(0.0, 1.5, size=4)
    return np.interp(np.linspace(0, 1, samples), np.linspace(0, 1, 4), tgc_knots).astype(np.float32)


def _echo_settings(
    traits: PatientTraits, probe: ProbeGeometry, state: int, rng: np.random.Generator
) -> dict[str, float]:
    """Echo levels, speckle and display settings of a clip (ClipScene fields), drawn in this order."""
    mm = probe.mm_per_sample
    settings = {"pleura_db": float(rng.uniform(12.0, 15.0) - 1.0 * state)}
    settings["pleura_texture"] = float(min(1.0, rng.uniform(0.15, 0.35) + 0.2 * state))
    settings["skin_samples"] = float(max(1.5, rng.uniform(1.2, 2.4) / mm))
    settings["fat_fraction"] = traits.fat_fraction
    settings["a_line_decay_db"] = float(rng.uniform(2.0, 3.5))
    settings["haze_db"] = float(rng.uniform(-6.0, -2.0))
    settings["haze_decay_db"] = float(rng.uniform(8.0, 14.0))
    settings["speckle_lateral"] = traits.speckle_lateral
    settings["speckle_axial"] = float(rng.uniform(0.45, 0.6))
    settings["lung_decorrelation"] = float(rng.uniform(0.35, 0.6) * (1.0 - 0.5 * state / 3))
    settings["gain_db"] = traits.gain_db + float(rng.normal(0.0, 1.0))
    settings["dynamic_range_db"] = traits.dynamic_range_db
    settings["attenuation_db"] = float(rng.uniform(2.0, 8.0))
    return settings
