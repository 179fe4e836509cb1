"""What one simulated clip shows: anatomy, artefacts and their motion, in beam space.

A :class:`ClipScene` is drawn at random from a patient's traits and a designed severity
state; :mod:`lungus.sim.render` turns it into frames and masks. Units are beam-space
samples (depth, row) and scan lines (lateral, column); echo levels are in dB relative
to ordinary soft tissue.

Designed states (the clip's truth labels are *measured* from the rendered masks by the
rules in :mod:`lungus.data.bline_rules`, so a design and its labels cannot disagree):

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
    samples, lines = probe.beam_shape
    mm = probe.mm_per_sample
    if state is None:
        state = latent_state(traits, zone, rng)
    time_s = np.arange(n_frames) / fps

    # Pleural line: at the chest-wall depth, gently curved and irregular; thicker and
    # more fragmented when diseased.
    pleura_mean = min(traits.chest_wall_mm / mm, 0.45 * samples)
    roughness = (0.4 + 0.6 * state) / mm * 0.5
    pleura = (
        pleura_mean
        + rng.uniform(-1.5, 1.5) / mm * np.linspace(-1, 1, lines) ** 2
        + roughness * smooth_noise(rng, lines, correlation=lines / rng.uniform(6, 14))
    )
    pleura_sigma = max(1.0, rng.uniform(0.6, 0.9) * (1.0 + 0.25 * state) / mm)

    # Ribs: usually one at each side ("bat sign"); sometimes one or none.
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
    ribs_t = tuple(ribs)
    low, high = _intercostal_range(ribs_t, lines)

    # Breathing and sliding, in phase.
    phase = rng.uniform(0, 2 * math.pi)
    rate = traits.resp_rate_hz * rng.uniform(0.9, 1.1)
    wave = np.sin(2 * math.pi * rate * time_s + phase)
    resp = (traits.resp_amplitude_mm / mm * wave).astype(np.float32)
    slide_amp = traits.sliding_mm * (1.0 - 0.25 * state) / probe.mm_per_line(pleura_mean)
    sliding = (slide_amp * wave).astype(np.float32)
    slide_max = float(np.max(np.abs(sliding))) if n_frames else 0.0

    # Artefacts are kept clear of the rib shadows even at full sliding.
    margin = slide_max + 3.0
    art_low, art_high = low + margin, high - margin
    inter_width = max(high - low, 1.0)

    blines: list[BLineSpec] = []
    confluent: list[ConfluentSpec] = []
    consolidation: ConsolidationSpec | None = None
    taken: list[tuple[float, float]] = []
    bline_half = lambda: float(max(2.0, lines * rng.uniform(0.014, 0.032)))  # noqa: E731
    gap = 3.0

    if state == 2 or state == 3:
        kind = rng.choice(
            ["confluent", "consolidation", "both"], p=[0.5, 0.2, 0.3] if state == 2 else [0.55, 0.15, 0.3]
        )
        if kind in ("confluent", "both"):
            share = rng.uniform(0.26, 0.45) if state == 2 else rng.uniform(0.62, 0.95)
            half = 0.5 * share * inter_width
            placed = _place(rng, [half], art_low - margin + 1.0, art_high + margin - 1.0, taken, gap)
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
                taken.append((center - h - slide_max, center + h + slide_max))
        if kind in ("consolidation", "both"):
            if state == 2:
                depth_mm = rng.uniform(4.0, 10.0)
                half = rng.uniform(0.08, 0.16) * inter_width
            else:
                depth_mm = rng.uniform(15.0, 35.0)
                half = rng.uniform(0.18, 0.32) * inter_width
            depth = min(depth_mm / mm, 0.45 * (samples - pleura_mean))
            placed = _place(rng, [half], art_low, art_high, taken, gap)
            if not placed and kind == "both":
                placed = _place(rng, [half], art_low, art_high, [], gap)  # may sit inside the white lung
            if placed:
                center, h = placed[0]
                consolidation = ConsolidationSpec(
                    center=center, half_width=h, depth=float(depth), depth_mm=float(depth * mm)
                )
                taken.append((center - h, center + h))
        n_discrete = int(rng.integers(0, 3))
    elif state == 1:
        n_discrete = int(min(5, 1 + rng.poisson(0.8 + 2.0 * traits.severity)))
    else:
        n_discrete = 0

    if n_discrete:
        halves = [bline_half() for _ in range(n_discrete)]
        placed = _place(
            rng, halves, art_low, art_high, [(s - slide_max, e + slide_max) for s, e in taken], gap + 2 * 0
        )
        for i, (center, h) in enumerate(placed):
            # The first B-line of a discrete clip is there most of the time; the others come and go.
            duty = rng.uniform(0.8, 1.0) if i == 0 else rng.uniform(0.3, 1.0)
            blines.append(
                BLineSpec(
                    center=center,
                    half_width=h,
                    gain_db=float(rng.uniform(9.0, 14.0)),
                    visibility=visibility_track(rng, n_frames, duty, fps),
                )
            )

    a_line_db = {0: 10.0, 1: 7.5, 2: 5.0, 3: 3.5}[state] + rng.uniform(-1.5, 1.5)
    tgc_knots = rng.normal(0.0, 1.5, size=4)
    tgc = np.interp(np.linspace(0, 1, samples), np.linspace(0, 1, 4), tgc_knots).astype(np.float32)
    return ClipScene(
        probe=probe,
        zone=zone,
        state=int(state),
        n_frames=n_frames,
        fps=float(fps),
        pleura=pleura.astype(np.float32),
        pleura_sigma=float(pleura_sigma),
        pleura_db=float(rng.uniform(12.0, 15.0) - 1.0 * state),
        pleura_texture=float(min(1.0, rng.uniform(0.15, 0.35) + 0.2 * state)),
        skin_samples=float(max(1.5, rng.uniform(1.2, 2.4) / mm)),
        fat_fraction=traits.fat_fraction,
        ribs=ribs_t,
        blines=blines,
        confluent=confluent,
        consolidation=consolidation,
        a_line_db=float(a_line_db),
        a_line_decay_db=float(rng.uniform(2.0, 3.5)),
        haze_db=float(rng.uniform(-6.0, -2.0)),
        haze_decay_db=float(rng.uniform(8.0, 14.0)),
        speckle_lateral=traits.speckle_lateral,
        speckle_axial=float(rng.uniform(0.45, 0.6)),
        lung_decorrelation=float(rng.uniform(0.35, 0.6) * (1.0 - 0.5 * state / 3)),
        resp=resp,
        sliding=sliding,
        gain_db=traits.gain_db + float(rng.normal(0.0, 1.0)),
        dynamic_range_db=traits.dynamic_range_db,
        tgc_db=tgc,
        attenuation_db=float(rng.uniform(2.0, 8.0)),
        annotations=annotations,
    )
