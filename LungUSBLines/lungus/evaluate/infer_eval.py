"""Score a `lungus infer --segmenter` run's clip evidence without its segmenter:
`lungus evaluate --from-infer`.

Users who ran `lungus infer --segmenter` over their clips already hold every clip's B-line
evidence in clips.csv; scoring it against a manifest's clip labels needs that table and the
manifest only (lungus.evaluate.clip_evidence).
"""

from __future__ import annotations

from pathlib import Path

from lungus.data.manifests.manifest import Manifest
from lungus.evaluate.clip_evidence import BLINE_SCHEME, evaluate_clip_evidence, read_infer_evidence
from lungus.evaluate.model_eval import Evaluation, default_eval_labels


def evaluate_infer_evidence(infer_path: str | Path, manifest_path: str | Path, out: str | Path, *,
                            labels: str | None = None, n_boot: int = 1000) -> Evaluation:
    """`lungus evaluate --from-infer`: the evidence a `lungus infer --segmenter` run wrote (its
    folder or clips.csv) scored against ``manifest_path``'s clip labels, without the segmenter.
    Clips infer could not read are listed under ``skipped``."""
    found = read_infer_evidence(infer_path)
    manifest = Manifest.load(manifest_path)
    metrics, files = evaluate_clip_evidence(found.evidence, manifest, out,
                                            labels=labels or default_eval_labels(manifest, BLINE_SCHEME),
                                            n_boot=n_boot, segmenter=found.segmenter, source=str(found.table),
                                            skipped=found.failed)
    return Evaluation(metrics, [], found.failed, files)
