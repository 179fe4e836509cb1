"""A segmenter's clip-level B-line evidence scored against clip labels: `lungus evaluate` of a
segmenter on clips without B-line masks (docs/evaluation.md#clip-evidence).

Real clips seldom come with B-line masks but often with clip labels (B-lines yes/no, a 0-3
severity score). A segmenter whose masks mean something should count more B-lines on clips
with B-lines than on clips without, and more on severe clips than on mild ones. So each clip's
evidence from its predicted masks (the clips.csv statistics of `lungus infer --segmenter`,
lungus.data.labels.blines.CLIP_EVIDENCE) is ranked against the clip labels: the AUC of each
statistic for B-lines present vs absent, and Spearman's rho against the severity, each with a
95 % patient-bootstrap interval (one patient's clips are correlated, so patients are resampled
whole, and the same resampled patients score every statistic).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.labels.blines import CLIP_EVIDENCE
from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.data.manifests.evidence_labels import BLINE_SCHEME, SEVERITY_SCHEME, clip_labels
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.bootstrap import bootstrap_ci, patient_bootstrap_indices
from lungus.evaluate.metrics import binary_auc, spearman

#: Evidence undefined on a clip whose masks never show an intercostal space (BLAS: a share of
#: that space). Such masks hold no B-line pixel either (B-line pixels are intercostal space), so
#: the clip is scored as showing none: 0, not left out (leaving out the clips where a segmenter
#: sees nothing would score BLAS on the clips where it sees something only).
ZERO_WHEN_UNDEFINED = ("blas_max", "blas_mean")
#: Where `lungus infer` leaves its per-clip table.
INFER_TABLE = "clips.csv"


@dataclass
class ClipEvidence:
    """One clip's evidence: ``values`` maps each CLIP_EVIDENCE name to a number, or None where
    it is undefined (BLAS on a clip whose masks never show an intercostal space)."""

    clip: str
    values: dict[str, float | None]


def clip_evidence_metrics(
    patients: Sequence[object],
    values: dict[str, Sequence[float | None]],
    blines: Sequence[int],
    severity: Sequence[int] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """How well each evidence statistic ranks clips by their labels.

    Args:
        patients: patient id per clip; the bootstrap resamples whole patients.
        values: per statistic, its value per clip (None or NaN: undefined for that clip, left
            out of that statistic's scores).
        blines: per clip 1 (B-lines), 0 (none) or -1 (no label).
        severity: per clip 0-3 or -1 (no label); None: no severity scores.
        n_boot: bootstrap replicates (0: no intervals).
        seed: bootstrap seed.

    Returns: ``n_clips``, ``n_patients``, ``n_with_blines``, ``n_without_blines`` (and
    ``n_severity``), and under ``statistics`` per statistic: ``auc`` and ``auc_ci`` (B-lines
    present vs absent, None where a class is missing), ``n`` (clips scored), ``mean_with_blines``
    and ``mean_without_blines``; with severity also ``spearman``, ``spearman_ci``,
    ``n_severity`` and ``mean_by_severity``.
    """
    y = np.asarray(blines, dtype=int)
    grade = None if severity is None else np.asarray(severity, dtype=int)
    if len(patients) != y.size or (grade is not None and grade.size != y.size):
        raise ValueError(f"need one patient and label per clip: {len(patients)} patients, {y.size} B-line labels"
                         + ("" if grade is None else f", {grade.size} severities"))
    columns = {name: np.asarray([np.nan if v is None else float(v) for v in column], dtype=float)
               for name, column in values.items()}
    for name, column in columns.items():
        if column.size != y.size:
            raise ValueError(f"{name}: {column.size} values for {y.size} clips")
    has_blines = y >= 0
    has_severity = np.zeros_like(has_blines) if grade is None else grade >= 0
    replicates = list(patient_bootstrap_indices(patients, n_boot, seed)) if n_boot else []

    def scored(column: np.ndarray, labelled: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float | None],
               labels: np.ndarray) -> tuple[float | None, list[float] | None, int]:
        """(point, CI, clips) of ``score(labels, evidence)`` on the labelled clips with a value."""
        usable = labelled & ~np.isnan(column)

        def on(index: np.ndarray) -> float | None:
            kept = index[usable[index]]
            return score(labels[kept], column[kept]) if kept.size >= 2 else None

        point = on(np.arange(y.size))
        return point, (bootstrap_ci(on, replicates) if replicates and point is not None else None), int(usable.sum())

    statistics: dict[str, dict[str, Any]] = {}
    for name, column in columns.items():
        auc, auc_ci, n = scored(column, has_blines, binary_auc, y)
        entry: dict[str, Any] = {
            "auc": auc, "auc_ci": auc_ci, "n": n,
            "mean_with_blines": _mean(column[y == 1]), "mean_without_blines": _mean(column[y == 0]),
        }
        if grade is not None:
            rho, rho_ci, n_severity = scored(column, has_severity, spearman, grade)
            entry.update({"spearman": rho, "spearman_ci": rho_ci, "n_severity": n_severity,
                          "mean_by_severity": {str(g): _mean(column[grade == g])
                                               for g in np.unique(grade[has_severity])}})
        statistics[name] = entry
    labelled = has_blines | has_severity
    metrics: dict[str, Any] = {
        "n_clips": int(labelled.sum()),
        "n_patients": len({str(p) for p, keep in zip(patients, labelled) if keep}),
        "n_with_blines": int((y == 1).sum()),
        "n_without_blines": int((y == 0).sum()),
    }
    if grade is not None:
        metrics["n_severity"] = int(has_severity.sum())
    metrics["statistics"] = statistics
    return metrics


def _mean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


# ---------------------------------------------------------------------------- infer's clips.csv


@dataclass
class InferEvidence:
    """What a `lungus infer --segmenter` run's clips.csv says: the evidence of each analysed clip,
    (clip, error) of each clip infer could not read, the table, and the segmenter(s) it names."""

    evidence: list[ClipEvidence]
    failed: list[tuple[str, str]]
    table: Path
    segmenter: str


def read_infer_evidence(path: str | Path) -> InferEvidence:
    """The clip evidence in a `lungus infer --segmenter` run's clips.csv (or the folder holding
    one); LungUSError naming the file for a table that is no clips.csv or holds no segmenter
    evidence."""
    path = Path(path)
    table = path / INFER_TABLE if path.is_dir() else path
    if not table.is_file():
        raise LungUSError(f"no {INFER_TABLE} here (the output folder of `lungus infer --segmenter`)", path)
    try:
        with open(table, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            lines = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LungUSError(f"cannot read the table ({error})", table) from None
    missing = [name for name in ("clip", *CLIP_EVIDENCE) if name not in header]
    if missing:
        raise LungUSError(f"not a `lungus infer` {INFER_TABLE}: no column {', '.join(missing)}", table)
    evidence, failed, segmenters = [], [], []
    for number, line in enumerate(lines, start=2):
        if (line.get("error") or "").strip():
            failed.append((line["clip"], line["error"].strip()))
            continue
        if not any((line[name] or "").strip() for name in CLIP_EVIDENCE):
            continue  # a clip analysed without a segmenter
        values: dict[str, float | None] = {}
        for name in CLIP_EVIDENCE:
            text = (line[name] or "").strip()
            try:
                values[name] = float(text) if text else None
            except ValueError:
                raise LungUSError(f"line {number}: column {name}: {text[:40]!r} is not a number", table) from None
            if values[name] is not None and not math.isfinite(values[name]):
                raise LungUSError(f"line {number}: column {name}: {text[:40]!r} is not a finite number", table)
        evidence.append(ClipEvidence(line["clip"], values))
        segmenter = (line.get("segmenter") or "").strip()
        if segmenter and segmenter not in segmenters:
            segmenters.append(segmenter)
    if not evidence:
        raise LungUSError("no clip here has segmenter evidence (run `lungus infer --segmenter SEG.pt`)", table)
    return InferEvidence(evidence, failed, table, ", ".join(segmenters))


# ---------------------------------------------------------------------------- the evaluation


def scored_values(evidence: Sequence[dict[str, float | None]]) -> dict[str, list[float | None]]:
    """Per CLIP_EVIDENCE statistic, its value on each clip as scored: BLAS undefined on a clip
    (no intercostal space) counts as 0 (ZERO_WHEN_UNDEFINED)."""
    values = {name: [v.get(name) for v in evidence] for name in CLIP_EVIDENCE}
    for name in ZERO_WHEN_UNDEFINED:
        values[name] = [0.0 if value is None else value for value in values[name]]
    return values


def evaluate_clip_evidence(
    evidence: Sequence[ClipEvidence],
    manifest: Manifest,
    out: str | Path,
    *,
    labels: str,
    n_boot: int = 1000,
    seed: int = 0,
    segmenter: str = "",
    source: str = "",
    skipped: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Match each clip's evidence to its manifest row, score it against the row's labels
    (``labels``: the B-line label source) and write DIR/clip_evidence.json, clip_evidence.csv
    and clip_evidence.png. Clips the manifest lacks are counted (``not_in_manifest``), clips
    without labels left out; none left: LungUSError. ``segmenter`` and ``source`` (the model
    file or the infer table) are recorded, and so are the ``skipped`` (clip, error) pairs.
    Returns (the metrics, the files written)."""
    from lungus.evaluate.subgroups import manifest_rows

    found = clip_labels(manifest, labels)
    rows = manifest_rows(manifest, [e.clip for e in evidence])
    seen: dict[int, str] = {}
    kept: list[tuple[int, ClipEvidence]] = []
    for item, row in zip(evidence, rows):
        if row is None:
            continue
        if row in seen:
            raise LungUSError(f"clips {seen[row]} and {item.clip} are both line {manifest.lines[row]} of the "
                              "manifest; score each clip once", manifest.path)
        seen[row] = item.clip
        if found.blines[row] >= 0 or (found.severity is not None and found.severity[row] >= 0):
            kept.append((row, item))
    not_in_manifest = sum(row is None for row in rows)
    if not kept:
        lacking = (f"{not_in_manifest} of the {len(evidence)} clips are not in the manifest; "
                   if not_in_manifest else "")
        raise LungUSError(f"no clip with evidence has a {labels} label ({lacking}pass the manifest the clips "
                          "came from)", manifest.path)
    kept.sort(key=lambda pair: pair[0])
    manifest_row = np.asarray([row for row, _ in kept])
    patients = [manifest.patients[row] for row in manifest_row]
    blines = found.blines[manifest_row]
    severity = None if found.severity is None else found.severity[manifest_row]
    raw = [item.values for _, item in kept]
    no_space = sum(all(v.get(name) is None for name in ZERO_WHEN_UNDEFINED) for v in raw)
    values = scored_values(raw)
    metrics = clip_evidence_metrics(patients, values, blines, severity, n_boot=n_boot, seed=seed)
    metrics = {"segmenter": segmenter, "source": source, "labels": labels,
               "severity_labels": found.severity_source, "not_in_manifest": not_in_manifest,
               "blas_zero_without_intercostal_space": no_space, **metrics}
    if skipped:
        metrics["skipped"] = [{"clip": clip, "error": error} for clip, error in skipped]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from lungus.evaluate.figures import clip_evidence_figure
    from lungus.evaluate.report import write_json

    clips = [item.clip for _, item in kept]
    files = {
        "clip_evidence": write_json(out / "clip_evidence.json", metrics),
        "clip_evidence_table": _write_table(out / "clip_evidence.csv", clips, patients, blines, severity, values),
        "clip_evidence_figure": clip_evidence_figure(out / "clip_evidence.png", values, blines, severity, metrics),
    }
    return metrics, files


def _write_table(path: Path, clips: Sequence[str], patients: Sequence[str], blines: np.ndarray,
                 severity: np.ndarray | None, values: dict[str, list[float | None]]) -> Path:
    """One row per scored clip: clip, patient, bline2 (absent/present/blank), lus4, the evidence
    as scored."""
    classes = LABEL_SCHEMES[BLINE_SCHEME]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["clip", "patient", BLINE_SCHEME, SEVERITY_SCHEME, *values])
    for i, clip in enumerate(clips):
        grade = "" if severity is None or severity[i] < 0 else int(severity[i])
        writer.writerow([clip, patients[i], classes[blines[i]] if blines[i] >= 0 else "", grade,
                         *("" if column[i] is None else f"{column[i]:.6g}" for column in values.values())])
    return atomic_write_text(path, buffer.getvalue())


def evidence_lines(metrics: dict[str, Any]) -> list[str]:
    """What `lungus evaluate` prints: the counts, then one line per statistic."""
    lines = [f"clip evidence of {metrics['n_clips']} clips, {metrics['n_patients']} patients "
             f"({metrics['n_with_blines']} with B-lines, {metrics['n_without_blines']} without) "
             f"against {metrics['labels']}" + (f" and {metrics['severity_labels']} severity"
                                                 if metrics.get("severity_labels") else "")]
    for name, entry in metrics["statistics"].items():
        text = f"  {name}: AUC {_with_ci(entry['auc'], entry['auc_ci'])}"
        if "spearman" in entry:
            text += f", severity rho {_with_ci(entry['spearman'], entry['spearman_ci'])}"
        text += (f"; mean {_number(entry['mean_with_blines'])} with B-lines, "
                 f"{_number(entry['mean_without_blines'])} without")
        lines.append(text)
    return lines


def _with_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "undefined"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"

