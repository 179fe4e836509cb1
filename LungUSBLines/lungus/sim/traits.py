"""Patient-level traits: what every clip of one simulated patient has in common.

A real collection is strongly clustered by patient: one patient's clips share a body
habitus (chest-wall thickness, rib spacing), a disease severity, a scanner and its
settings. The simulator reproduces that, so a split by clip leaks information that a
split by patient does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Scanning zones, as in the BLUE / COVID-BLUES protocols (three per side).
ZONES: tuple[str, ...] = ("R1", "R2", "R3", "L1", "L2", "L3")

# Lower (basal / posterior) zones are more often affected.
ZONE_SEVERITY_SHIFT = {"R1": -0.05, "R2": 0.0, "R3": 0.08, "L1": -0.05, "L2": 0.0, "L3": 0.08}


@dataclass(frozen=True)
class PatientTraits:
    """Traits shared by all clips of one patient.

    severity: 0..1 propensity for B-lines, confluence and consolidation.
    chest_wall_mm: skin-to-pleura distance.
    gain_db: display gain offset of this patient's exams.
    dynamic_range_db: display dynamic range (log-compression window).
    convex_preference: chance that a clip is taken with a convex probe when the probe
        choice is "mixed" (exams mostly use one probe).
    speckle_lateral: lateral speckle correlation, in scan lines (scanner focusing).
    fat_fraction: share of the chest wall that is subcutaneous fat.
    resp_rate_hz, resp_amplitude_mm: breathing.
    sliding_mm: lateral lung-sliding amplitude at the pleura.
    rib_width_frac: half-width of a rib shadow, as a fraction of the field of view.
    """

    patient: str
    severity: float
    chest_wall_mm: float
    gain_db: float
    dynamic_range_db: float
    convex_preference: float
    speckle_lateral: float
    fat_fraction: float
    resp_rate_hz: float
    resp_amplitude_mm: float
    sliding_mm: float
    rib_width_frac: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def sample_patient_traits(patient: str, rng: np.random.Generator) -> PatientTraits:
    """Draw one patient's traits.

    Severity is bimodal-ish (Beta(0.9, 1.1)): many near-normal patients and a tail of
    severe ones, like a COVID ward population.
    """
    severity = float(rng.beta(0.9, 1.1))
    return PatientTraits(
        patient=patient,
        severity=severity,
        chest_wall_mm=float(rng.uniform(10.0, 32.0)),
        gain_db=float(rng.normal(0.0, 2.5)),
        dynamic_range_db=float(rng.uniform(52.0, 64.0)),
        convex_preference=float(rng.choice([0.9, 0.1], p=[0.7, 0.3])),
        speckle_lateral=float(rng.uniform(2.0, 3.0)),
        fat_fraction=float(rng.uniform(0.15, 0.5)),
        resp_rate_hz=float(rng.uniform(0.2, 0.45)),
        resp_amplitude_mm=float(rng.uniform(0.5, 2.0)),
        # Sick lungs slide less.
        sliding_mm=float(rng.uniform(1.0, 2.5) * (1.0 - 0.6 * severity)),
        rib_width_frac=float(rng.uniform(0.12, 0.22)),
    )
