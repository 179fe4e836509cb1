"""Simulated lung-ultrasound clips with ground truth, and collections of them.

``simulate_clip`` makes one clip of one patient; ``plan_collection`` and
``simulate_collection`` make a collection of clips spread over patients. Everything is
deterministic per seed, and a clip depends only on (seed, patient index, its index
within the patient), not on how many clips are made in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lungus.data.labels.bline_rules import FrameTruth, clip_labels
from lungus.data.labels.blines import masks_truth
from lungus.io.clip import Clip
from lungus.sim.annotate import annotation_overlay
from lungus.sim.geometry import PROBES, ProbeGeometry, make_probe
from lungus.sim.render import ClipRenderer
from lungus.sim.scene import ClipScene, sample_scene
from lungus.sim.traits import ZONES, PatientTraits, sample_patient_traits

if TYPE_CHECKING:
    from lungus.sim.fitted import SimulatorFit

PROBE_CHOICES = (*PROBES, "mixed")

# Sizes the generator accepts (a fan needs room for pleura, ribs and a few A-lines).
MIN_SIZE = 32
MAX_SIZE = 2048


@dataclass(frozen=True)
class SimulationConfig:
    """What every clip of a simulated collection looks like.

    n_frames: frames per clip; height, width: image size in pixels; fps: frame rate;
    probe: "convex", "linear" or "mixed" (each patient mostly one kind);
    annotations: burn scanner text and a depth scale into the black area outside the fan;
    fit: settings fitted to real clips (lungus.sim.fitted, `lungus sim-fit`), drawn per clip;
    None (default) keeps the simulator's own.
    """

    n_frames: int = 40
    height: int = 256
    width: int = 256
    fps: float = 25.0
    probe: str = "mixed"
    annotations: bool = True
    fit: SimulatorFit | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n_frames, (int, np.integer)) or self.n_frames < 1:
            raise ValueError(f"n_frames must be a whole number >= 1, got {self.n_frames!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not MIN_SIZE <= value <= MAX_SIZE:
                raise ValueError(
                    f"{name} must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {value!r}"
                )
        if not (isinstance(self.fps, (int, float)) and 0 < self.fps <= 1000):
            raise ValueError(f"fps must be a number in (0, 1000], got {self.fps!r}")
        if self.probe not in PROBE_CHOICES:
            raise ValueError(f"probe must be one of {', '.join(PROBE_CHOICES)}, got {self.probe!r}")
        if self.fit is not None:
            from lungus.sim.fitted import SimulatorFit

            if not isinstance(self.fit, SimulatorFit):
                raise ValueError(f"fit must be a lungus.sim.fitted.SimulatorFit, got {type(self.fit).__name__}")


@dataclass
class SimulatedClip:
    """A simulated clip with its ground truth.

    masks: (T, H, W) uint8 class ids (lungus.data.labels.schemes); frames: per-frame truth;
    labels: truth per scheme (bline2, bline3, lus4); state: the designed state 0..3.
    """

    name: str
    patient: str
    zone: str
    clip: Clip
    masks: np.ndarray
    frames: list[FrameTruth]
    labels: dict[str, str]
    probe: str
    state: int
    consolidation_mm: float
    traits: PatientTraits
    geometry: ProbeGeometry
    scene_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> np.ndarray:
        return np.array([f.bline_count for f in self.frames], dtype=np.int64)


def _linear_depth_mm(traits: PatientTraits, rng: np.random.Generator) -> float:
    # A linear probe is set shallow, but deep enough to show the pleura and an A-line or two.
    return float(np.clip(traits.chest_wall_mm * rng.uniform(2.4, 3.6), 35.0, 70.0))


def simulate_scene(
    traits: PatientTraits,
    zone: str,
    config: SimulationConfig,
    rng: np.random.Generator,
    state: int | None = None,
    probe: str | None = None,
    fit_rng: np.random.Generator | None = None,
) -> ClipScene:
    """Draw the scene of one clip (before rendering). With ``config.fit`` the fitted settings are
    drawn from ``fit_rng`` (required then), a stream apart from ``rng``."""
    kind = probe or config.probe
    if kind == "mixed":
        kind = "convex" if rng.random() < traits.convex_preference else "linear"
    depth = _linear_depth_mm(traits, rng) if kind == "linear" else None
    fitted = None
    if config.fit is not None:
        if fit_rng is None:
            raise ValueError("a simulation with a fit needs fit_rng")
        fitted = config.fit.draw(fit_rng)
    layout = config.fit.convex_layout(fitted) if fitted is not None else None
    geometry = make_probe(kind, config.height, config.width, rng, depth_mm=depth, layout=layout)
    scene = sample_scene(
        traits, geometry, zone, config.n_frames, config.fps, rng, state=state, annotations=config.annotations
    )
    return config.fit.apply(scene, fitted) if fitted is not None else scene


def render_clip(
    name: str, traits: PatientTraits, scene: ClipScene, rng: np.random.Generator
) -> SimulatedClip:
    """Render a scene into a Clip with masks, per-frame truth and labels."""
    probe = scene.probe
    images, masks = ClipRenderer(scene, rng).render()
    fan = probe.fan_geometry()
    if scene.annotations:
        lines = [
            "C5-2" if probe.kind == "convex" else "L12-4",
            "LUNG",
            f"D {probe.depth_mm / 10:.1f}cm",
            f"G {int(round(50 + 2 * scene.gain_db))}%",
            f"{scene.fps:.0f}Hz",
            traits.patient,
        ]
        overlay = annotation_overlay(probe, fan.mask, lines, rng)
        np.maximum(images, overlay[None], out=images)
    consolidation_mm = scene.consolidation.depth_mm if scene.consolidation is not None else 0.0
    frames = masks_truth(masks, fan)
    clip = Clip(
        frames=images,
        fps=scene.fps,
        spacing_mm=(probe.mm_per_sample, probe.mm_per_sample),
        meta={
            "simulated": True,
            "probe": probe.kind,
            "depth_mm": round(probe.depth_mm, 2),
            "zone": scene.zone,
        },
        fan=fan,
    )
    summary = {
        "probe": probe.kind,
        "depth_mm": round(probe.depth_mm, 1),
        "pleura_depth_mm": round(scene.pleura_depth_mm, 1),
        "ribs": len(scene.ribs),
        "discrete_blines": len(scene.blines),
        "confluent_areas": len(scene.confluent),
        "consolidation_mm": round(consolidation_mm, 1),
    }
    return SimulatedClip(
        name=name,
        patient=traits.patient,
        zone=scene.zone,
        clip=clip,
        masks=masks,
        frames=frames,
        labels=clip_labels(frames, consolidation_mm),
        probe=probe.kind,
        state=scene.state,
        consolidation_mm=float(consolidation_mm),
        traits=traits,
        geometry=probe,
        scene_summary=summary,
    )


def simulate_clip(
    config: SimulationConfig | None = None,
    seed: int = 0,
    traits: PatientTraits | None = None,
    zone: str = "R1",
    state: int | None = None,
    probe: str | None = None,
    name: str = "clip",
) -> SimulatedClip:
    """One simulated clip. ``state`` (0..3) forces the designed severity and ``probe``
    the probe kind; by default both follow the patient's traits."""
    config = config or SimulationConfig()
    rng = np.random.default_rng([seed, 7])
    if traits is None:
        traits = sample_patient_traits("P000", np.random.default_rng([seed, 1, 0]))
    fit_rng = np.random.default_rng([seed, 3])
    scene = simulate_scene(traits, zone, config, rng, state=state, probe=probe, fit_rng=fit_rng)
    return render_clip(name, traits, scene, rng)


@dataclass(frozen=True)
class PlannedClip:
    index: int
    name: str
    patient_index: int
    patient: str
    clip_in_patient: int
    zone: str


def patient_name(index: int) -> str:
    return f"P{index + 1:03d}"


def plan_collection(n_clips: int, n_patients: int, seed: int) -> list[PlannedClip]:
    """Which patient and zone each clip of a collection belongs to.

    Every patient gets at least one clip; the rest are spread unevenly (some patients
    have more exams than others). Zones cycle R1..L3 within a patient; a patient's
    second pass over the zones gets names ending in ``_2``.
    """
    if n_patients < 1:
        raise ValueError(f"need at least 1 patient, got {n_patients}")
    if n_clips < n_patients:
        raise ValueError(f"need at least one clip per patient: {n_clips} clips for {n_patients} patients")
    rng = np.random.default_rng([seed, 0])
    extra = rng.multinomial(n_clips - n_patients, rng.dirichlet(np.full(n_patients, 4.0)))
    per_patient = 1 + extra
    plan: list[PlannedClip] = []
    for p, count in enumerate(per_patient):
        for k in range(int(count)):
            zone = ZONES[k % len(ZONES)]
            repeat = k // len(ZONES)
            name = f"{patient_name(p)}_{zone}" + (f"_{repeat + 1}" if repeat else "")
            plan.append(PlannedClip(len(plan), name, p, patient_name(p), k, zone))
    return plan


def patient_traits(seed: int, patient_index: int) -> PatientTraits:
    return sample_patient_traits(patient_name(patient_index), np.random.default_rng([seed, 1, patient_index]))


def simulate_planned(planned: PlannedClip, config: SimulationConfig, seed: int) -> SimulatedClip:
    traits = patient_traits(seed, planned.patient_index)
    rng = np.random.default_rng([seed, 2, planned.patient_index, planned.clip_in_patient])
    fit_rng = np.random.default_rng([seed, 3, planned.patient_index, planned.clip_in_patient])
    scene = simulate_scene(traits, planned.zone, config, rng, fit_rng=fit_rng)
    return render_clip(planned.name, traits, scene, rng)


def simulate_collection(
    n_clips: int, n_patients: int, seed: int, config: SimulationConfig | None = None
) -> Iterator[SimulatedClip]:
    """Simulated clips of a collection, one at a time (in plan order)."""
    config = config or SimulationConfig()
    for planned in plan_collection(n_clips, n_patients, seed):
        yield simulate_planned(planned, config, seed)
