"""The clip labels a segmenter's clip-level B-line evidence is scored against (lungus.evaluate.clip_evidence)
and a weakly supervised segmenter learns from (lungus.data.labels.weak_masks): B-lines present or
absent, and the 0-3 severity that goes with them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.data.manifests.label_sources import labels_of
from lungus.data.manifests.manifest import TRUTH_PREFIX, Manifest

#: The binary B-line scheme the AUCs are of, and the severity scheme rho is against.
BLINE_SCHEME, SEVERITY_SCHEME = "bline2", "lus4"


@dataclass
class ClipLabels:
    """Clip labels in manifest-row order: ``blines`` 1 present / 0 absent / -1 unlabelled;
    ``severity`` 0-3 / -1 (None when the manifest gives no severity)."""

    blines: np.ndarray
    severity: np.ndarray | None
    source: str
    severity_source: str | None


def clip_labels(manifest: Manifest, source: str) -> ClipLabels:
    """B-line labels of ``source`` (a label source of lungus.data.manifests.label_sources, in
    bline2) and the severity that goes with it: the simulator's ``truth_lus4`` for ``truth``,
    else the manifest's ``lus4`` column, else none."""
    hard = labels_of(manifest, source, BLINE_SCHEME).hard
    blines = np.where(hard < 0, -1, (hard == LABEL_SCHEMES[BLINE_SCHEME].index("present")).astype(int))
    severity_source = None
    if source == "truth" and TRUTH_PREFIX + SEVERITY_SCHEME in manifest.columns:
        severity_source = "truth"
    elif SEVERITY_SCHEME in manifest.columns:
        severity_source = SEVERITY_SCHEME
    severity = None if severity_source is None else labels_of(manifest, severity_source, SEVERITY_SCHEME).hard
    return ClipLabels(blines, severity, source, severity_source)
