"""Render a :class:`~lungus.sim.scene.ClipScene` into ultrasound frames and class masks.

The echo model, per beam-space pixel::

    power = reflectivity * speckle + noise_floor * fresh_noise
    pixel = 255 * (10 log10(power) - (top_db - dynamic_range)) / dynamic_range

``speckle`` is |S|^2 of a complex Gaussian field blurred anisotropically (long laterally,
short axially, as a focused beam makes it), so the displayed speckle is log-Rayleigh.
Tissue speckle is frozen to the tissue and decorrelates slowly; the speckle under the
pleura slides laterally with the lung and decorrelates faster (the lung-sliding
shimmer). Depth gain (TGC), residual attenuation and gain are folded into the static
reflectivity maps, so each frame costs a few array operations, a log and two remaps.

Everything is drawn in beam space; masks use the same geometry and are scan-converted
with nearest-neighbour sampling, so they register with the image exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lungus.data.labels.schemes import A_LINE, B_LINE, BACKGROUND, CONFLUENT, PLEURA, RIB_SHADOW
from lungus.sim.geometry import ScanConverter
from lungus.sim.scene import ClipScene, smooth_noise

# Bottom of the display window relative to tissue: ordinary tissue shows mid-dark grey,
# as on real lung exams; the window's top is this plus the dynamic range.
_BOTTOM_DB = -15.0
_NOISE_FLOOR_DB = -12.0
_FRESH_MEMORY = 0.6  # AR(1) memory of the fresh speckle
_BLINE_SMOOTHING = 0.35  # B-lines look less grainy than tissue speckle
_RIB_SHADOW_DB = -20.0
# An A-line is masked while it stands out of the lung haze by at least this much.
A_LINE_MIN_CONTRAST_DB = 3.0


def _db(value: np.ndarray | float) -> np.ndarray:
    return np.power(10.0, np.asarray(value, dtype=np.float64) / 10.0)


def _band(distance: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Gaussian band profile, 1 at distance 0."""
    return np.exp(-0.5 * (distance / sigma) ** 2)


# Half the full width at half maximum of a Gaussian, in sigmas: mask bands use it so a
# masked line is exactly where its echo is at least half its peak.
_HALF_MAX = math.sqrt(2.0 * math.log(2.0))


class SpeckleField:
    """Complex Gaussian speckle, blurred so its power has unit mean.

    Fields are planar float32 arrays (2, rows, cols): real and imaginary parts. The
    lateral speckle size grows with depth (the beam widens past its focus): a field is
    a depth-weighted mix of a fine and a coarse independent field. Fresh speckle for
    each frame is cut at a random lateral offset from a pool drawn once per clip (rows
    stay aligned with depth), which costs a slice instead of new random numbers.
    """

    def __init__(self, rng: np.random.Generator, lateral: float, axial: float, growth: float = 1.0) -> None:
        self.rng = rng
        self.sigmas = ((float(lateral), float(axial)), (float(lateral) * (1.0 + growth), float(axial)))
        self._pool: np.ndarray | None = None

    @staticmethod
    def _blurred(white: np.ndarray, sigma_x: float, sigma_z: float) -> np.ndarray:
        kx = 2 * int(math.ceil(3 * sigma_x)) + 1
        kz = 2 * int(math.ceil(3 * sigma_z)) + 1
        gx = cv2.getGaussianKernel(kx, sigma_x, cv2.CV_64F)
        gz = cv2.getGaussianKernel(kz, sigma_z, cv2.CV_64F)
        # Unit variance after blurring; each of the real and imaginary parts then gets 1/2.
        scale = np.float32(1.0 / math.sqrt(2.0 * float(np.sum(gx**2) * np.sum(gz**2))))
        blurred = cv2.GaussianBlur(
            white, (kx, kz), sigmaX=sigma_x, sigmaY=sigma_z, borderType=cv2.BORDER_REFLECT
        )
        return blurred * scale

    def draw(self, shape: tuple[int, int]) -> np.ndarray:
        """A new (2, rows, cols) field; row 0 is the probe surface."""
        rows = shape[0]
        deep = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None]
        near_weight, far_weight = np.sqrt(1.0 - deep), np.sqrt(deep)
        parts = []
        for _ in range(2):
            near, far = (
                self._blurred(self.rng.standard_normal(shape, dtype=np.float32), sx, sz)
                for sx, sz in self.sigmas
            )
            parts.append(near * near_weight + far * far_weight)
        return np.stack(parts)

    def crop(self, shape: tuple[int, int]) -> np.ndarray:
        """A (2, rows, cols) view at a random lateral offset of a pool twice as wide."""
        rows, cols = shape
        if self._pool is None or self._pool.shape[1] != rows or self._pool.shape[2] < 2 * cols:
            self._pool = self.draw((rows, 2 * cols))
        c = int(self.rng.integers(0, self._pool.shape[2] - cols + 1))
        return self._pool[:, :, c : c + cols]


@dataclass(frozen=True)
class _BeamGrid:
    """Beam-space coordinates of a scene: depth z (samples) down, scan line x across."""

    samples: int
    lines: int
    z: np.ndarray  # (D, 1)
    x: np.ndarray  # (1, L)
    pleura: np.ndarray  # (1, L) depth of the pleural line
    below: np.ndarray  # (D, L) distance under the pleural line, samples

    @classmethod
    def of(cls, scene: ClipScene) -> _BeamGrid:
        samples, lines = scene.probe.beam_shape
        z = np.arange(samples, dtype=np.float64)[:, None]
        x = np.arange(lines, dtype=np.float64)[None, :]
        pleura = scene.pleura.astype(np.float64)[None, :]
        return cls(samples, lines, z, x, pleura, z - pleura)

    @property
    def shape(self) -> tuple[int, int]:
        return self.samples, self.lines


@dataclass(frozen=True)
class _RibShadows:
    shadow: np.ndarray  # (1, L) lateral shadow profile, 1 under a rib
    top: np.ndarray  # (1, L) depth where the shadow starts (inf where no rib)
    surface: np.ndarray  # (D, L) the bright arched rib surface
    gain: np.ndarray  # (D, L) the shadow's attenuation (1 outside it)


@dataclass(frozen=True)
class _Consolidation:
    region: np.ndarray  # (D, L) bool: consolidated lung
    bottom: np.ndarray  # (1, L) its deep border (-inf where there is none)
    column: np.ndarray  # (1, L) bool: lines crossing it


def _rib_shadows(scene: ClipScene, grid: _BeamGrid) -> _RibShadows:
    """Rib shadows and rib surfaces: a bright arched surface, total shadow below it
    (with a soft onset just under the surface and soft lateral edges)."""
    z, x, pleura = grid.z, grid.x, grid.pleura
    shadow = np.zeros((1, grid.lines))
    rib_top = np.full((1, grid.lines), np.inf)
    rib_surface = np.zeros(grid.shape)
    shadow_full = np.zeros(grid.shape)
    for rib in scene.ribs:
        u = (x - rib.center) / rib.half_width
        side = 1.0 / (1.0 + np.exp((np.abs(x - rib.center) - rib.half_width) / rib.edge))
        top = rib.top + 0.35 * (pleura.mean() - rib.top) * u**2
        shadow = np.maximum(shadow, side)
        rib_top = np.where(side >= 0.5, np.minimum(rib_top, top), rib_top)
        rib_surface = np.maximum(rib_surface, side * _band(z - top, 1.6) * (z <= top + 3))
        shadow_full = np.maximum(shadow_full, side * np.clip((z - top) / 2.0, 0.0, 1.0))
    shadow_gain = 1.0 - (1.0 - _db(_RIB_SHADOW_DB)) * shadow_full
    return _RibShadows(shadow, rib_top, rib_surface, shadow_gain)


def _consolidation(scene: ClipScene, grid: _BeamGrid, rng: np.random.Generator) -> _Consolidation:
    """Consolidation: tissue-like region under the pleura with a shredded deep border."""
    consolidated = np.zeros(grid.shape, dtype=bool)
    bottom = np.full((1, grid.lines), -np.inf)
    if scene.consolidation is not None:
        c = scene.consolidation
        u = (grid.x - c.center) / c.half_width
        shred = 1.0 + 0.22 * smooth_noise(rng, grid.lines, correlation=6.0)[None, :]
        height = c.depth * np.sqrt(np.clip(1.0 - u**2, 0.0, 1.0)) * np.clip(shred, 0.4, 1.6)
        height = np.where(np.abs(u) < 1.0, height, 0.0)
        bottom = np.where(height > 0.5, grid.pleura + scene.pleura_sigma * 2 + height, -np.inf)
        consolidated = (grid.below > 0) & (grid.z < bottom)
    return _Consolidation(consolidated, bottom, np.isfinite(bottom))


def _chest_wall_power(
    scene: ClipScene, grid: _BeamGrid, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Chest wall: skin, subcutaneous fat with septa, muscle with fibrillar texture and fascias.

    Returns its echo power (zero under the pleura) and the fibrillar structure (unit std),
    which a consolidation reuses."""
    D, L = grid.shape
    z, x = grid.z, grid.x
    wall = grid.pleura - 1.5 * scene.pleura_sigma
    fat_top = scene.skin_samples + 0.8 * smooth_noise(rng, L, L / 8)[None, :]
    fat_bottom = fat_top + scene.fat_fraction * (wall - fat_top) * (
        1 + 0.08 * smooth_noise(rng, L, L / 5)[None, :]
    )
    structure = cv2.GaussianBlur(
        rng.standard_normal((D, L)).astype(np.float32), (0, 0), sigmaX=9.0, sigmaY=0.9
    )
    structure = structure / (structure.std() + 1e-6)
    layer_db = np.where(z < fat_top, 3.0, np.where(z < fat_bottom, -7.0, 0.0))
    texture_db = np.where(z < fat_bottom, 2.0, 4.0) * structure
    fascia = 7.0 * _band(z - fat_bottom, 0.9) + 4.0 * _band(z - (wall - 0.25 * (wall - fat_bottom)), 0.8)
    fascia *= np.exp(0.4 * smooth_noise(rng, L, 6.0))[None, :]
    septa = np.zeros((D, L))
    for _ in range(int(rng.integers(1, 4))):
        depth = fat_top + rng.uniform(0.2, 0.8) * (fat_bottom - fat_top)
        septa = np.maximum(
            septa, _band(z - depth - 0.02 * (x - L / 2) * rng.normal(), 0.7) * rng.uniform(4, 8)
        )
    septa *= (z > fat_top) & (z < fat_bottom)
    streaks = _muscle_streaks(grid, fat_bottom, wall, rng)
    tissue_db = layer_db + texture_db + fascia + septa + streaks
    return _db(tissue_db) * (grid.below < 0), structure


def _muscle_streaks(
    grid: _BeamGrid, fat_bottom: np.ndarray, wall: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Short bright streaks in the muscle (fibre bundles, fascia fragments), in dB."""
    D, L = grid.shape
    streaks = np.zeros((D, L), dtype=np.float32)
    n_streaks = int(rng.integers(4, 12))
    rows = rng.uniform(fat_bottom.min(), max(float(wall.min()) - 1, float(fat_bottom.min()) + 1), n_streaks)
    streaks[rows.astype(int).clip(0, D - 1), rng.integers(0, L, n_streaks)] = 1.0
    streaks = cv2.GaussianBlur(streaks, (0, 0), sigmaX=float(rng.uniform(5, 10)), sigmaY=0.8)
    streaks *= rng.uniform(5.0, 9.0) / (streaks.max() + 1e-9)
    return streaks


def _lung_haze_power(
    scene: ClipScene,
    grid: _BeamGrid,
    lung_span: float,
    consolidation: _Consolidation,
    rng: np.random.Generator,
) -> np.ndarray:
    """Aerated lung: a reverberation haze that fades with depth."""
    haze_db = scene.haze_db - scene.haze_decay_db * np.clip(grid.below / lung_span, 0, None)
    haze_db = haze_db + 1.5 * smooth_noise(rng, grid.lines, grid.lines / 10)[None, :]
    return _db(haze_db) * (grid.below >= 0) * ~consolidation.region


def _consolidation_power(
    scene: ClipScene,
    grid: _BeamGrid,
    consolidation: _Consolidation,
    structure: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Consolidated lung: echoes like tissue (hepatisation), air bronchograms, bright deep border."""
    if scene.consolidation is None:
        return np.zeros(grid.shape)
    consolidated = consolidation.region
    cons_db = 0.0 + 3.0 * structure
    blobs = np.zeros(grid.shape, dtype=np.float32)
    rows, cols = np.nonzero(consolidated)
    if rows.size:
        pick = rng.choice(rows.size, size=min(rows.size, int(rng.integers(3, 12))), replace=False)
        blobs[rows[pick], cols[pick]] = 1.0
        blobs = cv2.GaussianBlur(blobs, (0, 0), sigmaX=1.8, sigmaY=0.9)
        blobs /= blobs.max() + 1e-9
    cons_power = _db(cons_db) * consolidated + _db(12.0) * blobs * consolidated
    border = _band(grid.z - consolidation.bottom, 1.3) * consolidation.column
    return cons_power + _db(6.0) * border


def _pleura_power(
    scene: ClipScene, grid: _BeamGrid, consolidation: _Consolidation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The pleural line: bright, granular, fragmented when diseased; weaker over a consolidation.

    Returns its power and its lateral texture (the A-lines repeat it)."""
    along = np.exp(scene.pleura_texture * smooth_noise(rng, grid.lines, 2.5))[None, :]
    pleura_gain = _db(scene.pleura_db) * along * np.where(consolidation.column, _db(-5.0), 1.0)
    return pleura_gain * _band(grid.below, scene.pleura_sigma), along


def _a_lines(
    scene: ClipScene, grid: _BeamGrid, lung_span: float, consolidation: _Consolidation, along: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A-lines: copies of the pleural line at multiples of its depth, fading per reverberation.

    Returns their power and the band masked as A-line (where one stands out of the haze)."""
    z, pleura = grid.z, grid.pleura
    a_power = np.zeros(grid.shape)
    a_band = np.zeros(grid.shape, dtype=bool)
    k = 2
    while k * float(pleura.mean()) < grid.samples - 2:
        # Each reverberation stands out of the local haze a little less.
        contrast_db = scene.a_line_db - scene.a_line_decay_db * (k - 2)
        sigma = scene.pleura_sigma * (1.0 + 0.25 * (k - 1))
        centre = k * pleura
        haze_there = scene.haze_db - scene.haze_decay_db * (centre - pleura) / lung_span
        a_power += _db(haze_there + contrast_db) * along * _band(z - centre, sigma)
        visible = contrast_db >= A_LINE_MIN_CONTRAST_DB
        a_band |= (np.abs(z - centre) <= _HALF_MAX * sigma) & visible
        k += 1
    a_power *= ~consolidation.column
    a_band &= ~consolidation.column
    return a_power, a_band


def _bline_region(
    scene: ClipScene, grid: _BeamGrid, lung_span: float, consolidation: _Consolidation
) -> tuple[np.ndarray, np.ndarray]:
    """Where B-lines can show: under the pleural line (and under any consolidation), and their
    fading with depth there."""
    z = grid.z
    bline_start = np.where(
        consolidation.column, consolidation.bottom + 1.0, grid.pleura + _HALF_MAX * scene.pleura_sigma + 0.5
    )
    bline_region = z > bline_start
    return bline_region, bline_region * _db(-6.0 * np.clip((z - bline_start) / lung_span, 0, 1))


def _display_gain_db(scene: ClipScene, grid: _BeamGrid) -> np.ndarray:
    """Display gain: TGC, residual attenuation, weaker edge lines; all static in dB."""
    L = grid.lines
    lateral_db = -2.5 * np.abs((grid.x - (L - 1) / 2) / ((L - 1) / 2)) ** 4
    return scene.tgc_db[:, None] - scene.attenuation_db * (grid.z / grid.samples) + lateral_db


class ClipRenderer:
    """Precomputes a scene's static maps; :meth:`frame` renders one time point."""

    def __init__(self, scene: ClipScene, rng: np.random.Generator) -> None:
        self.scene = scene
        self.rng = rng
        grid = _BeamGrid.of(scene)
        self.samples, self.lines = grid.shape
        # The steps draw from rng in this order; keep it, or every simulated set changes.
        ribs = _rib_shadows(scene, grid)
        consolidation = _consolidation(scene, grid, rng)
        tissue_power, structure = _chest_wall_power(scene, grid, rng)
        lung_span = max(grid.samples - float(grid.pleura.mean()), 1.0)
        lung_power = _lung_haze_power(scene, grid, lung_span, consolidation, rng)
        cons_power = _consolidation_power(scene, grid, consolidation, structure, rng)
        pleura_power, along = _pleura_power(scene, grid, consolidation, rng)
        a_power, a_band = _a_lines(scene, grid, lung_span, consolidation, along)
        bline_region, bline_depth_gain = _bline_region(scene, grid, lung_span, consolidation)
        gain_db = _display_gain_db(scene, grid)
        gain = _db(gain_db) * ribs.gain

        rib_power = _db(15.0) * ribs.surface
        static = (tissue_power + lung_power + cons_power + pleura_power + rib_power) * gain
        self.static_power = static.astype(np.float32)
        self.a_power = (a_power * gain).astype(np.float32)
        self.bline_power = (bline_depth_gain * gain).astype(np.float32)
        self.noise_power = (_db(_NOISE_FLOOR_DB) * _db(gain_db)).astype(np.float32)
        self._init_speckle((grid.below < 0) | consolidation.region)
        self._init_mask_maps(grid, ribs, a_band, bline_region)
        # Confluent ridges (merged B-lines of different strength), sliding with the lung.
        self.ridge = np.clip(1.0 + 0.3 * smooth_noise(rng, grid.lines + 2 * self.pad, 2.5), 0.5, 1.6)
        self.x = np.arange(grid.lines, dtype=np.float64)
        self.display_scale = np.float32(255.0 / scene.dynamic_range_db * 10.0)
        self.display_offset = np.float32(-(_BOTTOM_DB - scene.gain_db) * 255.0 / scene.dynamic_range_db)
        self.converter = ScanConverter(scene.probe, float(np.median(scene.pleura)))

    def _init_speckle(self, tissue_region: np.ndarray) -> None:
        """Which speckle each pixel shows: frozen tissue speckle above the pleura and in a
        consolidation (``tissue_region``), sliding lung speckle below."""
        scene, D, L = self.scene, self.samples, self.lines
        lung_fresh, tissue_fresh = scene.lung_decorrelation, scene.tissue_decorrelation
        self.speckle = SpeckleField(self.rng, scene.speckle_lateral, scene.speckle_axial)
        self.pad = int(math.ceil(float(np.max(np.abs(scene.sliding))) if scene.n_frames else 0.0)) + 2
        tissue_field = self.speckle.draw((D, L))
        self.tissue_static = tissue_field * (tissue_region * math.sqrt(1 - tissue_fresh**2)).astype(np.float32)
        self.lung_field = self.speckle.draw((D, L + 2 * self.pad))
        # Lateral differences of the lung field, for sub-line sliding by linear interpolation.
        self.lung_step = np.diff(self.lung_field, axis=2)
        self.coef_lung = (~tissue_region * math.sqrt(1 - lung_fresh**2)).astype(np.float32)
        self.coef_fresh = np.where(tissue_region, tissue_fresh, lung_fresh).astype(np.float32)
        self.fresh = self.speckle.crop((D, L)).copy()

    def _init_mask_maps(
        self, grid: _BeamGrid, ribs: _RibShadows, a_band: np.ndarray, bline_region: np.ndarray
    ) -> None:
        """Static parts of the masks: rib shadow, pleural line, where A- and B-lines are labelled."""
        base = np.full(grid.shape, BACKGROUND, dtype=np.uint8)
        in_shadow = (ribs.shadow >= 0.5) & (grid.z >= ribs.top)
        base[np.broadcast_to(in_shadow, grid.shape)] = RIB_SHADOW
        pleura_band = (np.abs(grid.below) <= _HALF_MAX * self.scene.pleura_sigma) & (ribs.shadow < 0.5)
        base[pleura_band] = PLEURA
        self.base_labels = base
        self.a_band = a_band & (ribs.shadow < 0.5)
        self.bline_region = bline_region & (ribs.shadow < 0.5)

    def _artefact_profiles(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """B-line echo gain per line, A-line obliteration per line, and the class per line."""
        scene = self.scene
        x = self.x
        slide = float(scene.sliding[t])
        gain = np.zeros_like(x)
        obliterate = np.zeros_like(x)
        column_class = np.zeros(x.shape, dtype=np.uint8)
        for b in scene.blines:
            vis = float(b.visibility[t])
            profile = 1.0 / (1.0 + ((x - b.center - slide) / b.half_width) ** 4)
            gain += _db(b.gain_db) * vis**2 * profile
            obliterate = np.maximum(obliterate, vis * profile)
            if vis >= 0.5:
                column_class[profile >= 0.5] = B_LINE
        for c in scene.confluent:
            vis = float(c.visibility[t])
            half = c.half_width * (1.0 + c.breathing * scene.resp[t] / (np.max(np.abs(scene.resp)) + 1e-6))
            profile = 1.0 / (1.0 + ((x - c.center - slide) / half) ** 8)
            ridge = np.interp(x - slide + self.pad, np.arange(self.ridge.size), self.ridge)
            gain += _db(c.gain_db) * vis**2 * profile * ridge
            obliterate = np.maximum(obliterate, vis * profile)
            if vis >= 0.5:
                column_class[profile >= 0.5] = CONFLUENT
        return gain, np.clip(obliterate, 0.0, 1.0), column_class

    def _speckle_power(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Speckle power of the frame, and the fresh speckle power (for the noise floor)."""
        if t > 0:
            self.fresh *= np.float32(_FRESH_MEMORY)
            self.fresh += np.float32(math.sqrt(1 - _FRESH_MEMORY**2)) * self.speckle.crop(
                self.fresh.shape[1:]
            )
        slide = float(self.scene.sliding[t])
        start = self.pad - slide
        i0 = int(math.floor(start))
        L = self.lines
        field = self.lung_step[:, :, i0 : i0 + L] * np.float32(start - i0)
        field += self.lung_field[:, :, i0 : i0 + L]
        field *= self.coef_lung
        field += self.tissue_static
        field += self.fresh * self.coef_fresh
        power = field[0] * field[0]
        power += field[1] * field[1]
        fresh_power = self.fresh[0] * self.fresh[0]
        fresh_power += self.fresh[1] * self.fresh[1]
        return power, fresh_power

    def beam_frame(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t`` in beam space: display pixels (uint8) and class labels (uint8).

        Frames must be rendered in order (the fresh speckle has memory)."""
        gain, obliterate, column_class = self._artefact_profiles(t)
        speckle, fresh = self._speckle_power(t)
        a_power = self.a_power * (1.0 - obliterate).astype(np.float32)[None, :]
        b_power = self.bline_power * gain.astype(np.float32)[None, :]
        power = (self.static_power + a_power) * speckle
        power += b_power * (_BLINE_SMOOTHING + (1.0 - _BLINE_SMOOTHING) * speckle)
        power += self.noise_power * fresh
        # Scanner speckle reduction: averaging neighbouring echo power before log
        # compression fills in the deep black holes of raw Rayleigh speckle.
        power = cv2.GaussianBlur(power, (7, 3), sigmaX=1.6, sigmaY=0.6)
        np.maximum(power, 1e-12, out=power)
        pixels = np.log10(power)
        pixels *= self.display_scale
        pixels += self.display_offset
        np.clip(pixels, 0, 255, out=pixels)
        image = pixels.astype(np.uint8)

        labels = self.base_labels.copy()
        labels[self.a_band & (obliterate < 0.5)[None, :]] = A_LINE
        artefact = self.bline_region & (column_class > 0)[None, :]
        labels[artefact] = np.broadcast_to(column_class[None, :], labels.shape)[artefact]
        return image, labels

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """All frames: images (T, H, W) uint8 and masks (T, H, W) uint8 class ids."""
        scene = self.scene
        conv = self.converter
        H, W = scene.probe.height, scene.probe.width
        images = np.empty((scene.n_frames, H, W), dtype=np.uint8)
        masks = np.empty((scene.n_frames, H, W), dtype=np.uint8)
        for t in range(scene.n_frames):
            image, labels = self.beam_frame(t)
            sample_map = conv.sample_map(float(scene.resp[t]))
            images[t] = conv.image(image, sample_map)
            masks[t] = conv.labels(labels, sample_map)
        return images, masks
