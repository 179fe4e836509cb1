"""Labeled sequences in the scene -> clip files and a manifest `lungus train` reads.

The user gives each sequence a patient (required: validation splits by patient), optionally a
zone, and a label in the task's scheme (bline2 absent/present, bline3 none/discrete/confluent,
lus4 0-3). These are kept as attributes of the sequence node, so they are saved with the scene
and the panel's table shows them again. :func:`export_training_set` writes the clips and
DIR/manifest.csv (docs/architecture.md#manifest) and checks the manifest with lungus.data.manifests.manifest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungus.data.labels.schemes import LABEL_SCHEMES, normalise_label
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError
from lungus.progress import Progress
from LungUSTrainLib.sequence_export import ExportResult, export_sequences

PATIENT_ATTRIBUTE = "LungUS.Patient"
ZONE_ATTRIBUTE = "LungUS.Zone"
LABEL_ATTRIBUTE_PREFIX = "LungUS.Label."
MANIFEST_NAME = "manifest.csv"
CLIPS_FOLDER = "clips"


@dataclass
class LabeledSequence:
    """A sequence with what training needs to know about it."""

    sequence: Any
    patient: str = ""
    label: str = ""
    zone: str = ""


def read_labels(sequence: Any, scheme: str) -> LabeledSequence:
    """The patient, zone and ``scheme`` label stored on a sequence ('' where not set)."""
    _check_scheme(scheme)
    return LabeledSequence(
        sequence=sequence,
        patient=sequence.GetAttribute(PATIENT_ATTRIBUTE) or "",
        label=sequence.GetAttribute(LABEL_ATTRIBUTE_PREFIX + scheme) or "",
        zone=sequence.GetAttribute(ZONE_ATTRIBUTE) or "",
    )


def store_labels(entry: LabeledSequence, scheme: str) -> None:
    """Keep an entry's patient, zone and label on its sequence node (saved with the scene)."""
    _check_scheme(scheme)
    sequence = entry.sequence
    sequence.SetAttribute(PATIENT_ATTRIBUTE, entry.patient.strip())
    sequence.SetAttribute(ZONE_ATTRIBUTE, entry.zone.strip())
    sequence.SetAttribute(LABEL_ATTRIBUTE_PREFIX + scheme, entry.label.strip())


def _check_scheme(scheme: str) -> None:
    if scheme not in LABEL_SCHEMES:
        raise LungUSError(f"unknown label scheme {scheme!r}; use one of {', '.join(LABEL_SCHEMES)}")


def clip_sequences(scene: Any) -> list[Any]:
    """The sequences of ``scene`` that hold clips: 2-D image frames, not the labelmaps, heat maps
    and chart markers recorded beside analysed clips."""
    from LungUSBLinesLib.results import HEATMAP_ROLE, MARKER_ROLE, MASKS_ROLE

    results = set()
    browsers = scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    for i in range(browsers.GetNumberOfItems()):
        browser = browsers.GetItemAsObject(i)
        for role in (MASKS_ROLE, HEATMAP_ROLE, MARKER_ROLE):
            if browser.GetNodeReferenceID(role):
                results.add(browser.GetNodeReferenceID(role))
    found = []
    sequences = scene.GetNodesByClass("vtkMRMLSequenceNode")
    for i in range(sequences.GetNumberOfItems()):
        sequence = sequences.GetItemAsObject(i)
        first = sequence.GetNthDataNode(0) if sequence.GetNumberOfDataNodes() else None
        if (
            sequence.GetID() not in results
            and first is not None
            and first.IsA("vtkMRMLScalarVolumeNode")
            and not first.IsA("vtkMRMLLabelMapVolumeNode")
        ):
            found.append(sequence)
    return found


def label_choices(scheme: str) -> tuple[str, ...]:
    """The labels of a scheme, in class order (what the panel offers)."""
    _check_scheme(scheme)
    return LABEL_SCHEMES[scheme]


def check_entries(entries: Iterable[LabeledSequence], scheme: str) -> list[LabeledSequence]:
    """Entries with canonical labels; LungUSError naming the first sequence that lacks a patient
    or has a label that is not one of the scheme's."""
    _check_scheme(scheme)
    checked = []
    for entry in entries:
        name = entry.sequence.GetName()
        if not entry.patient.strip():
            raise LungUSError(
                f"sequence {name!r} has no patient: every clip needs one (splits go by patient)"
            )
        try:
            label = normalise_label(scheme, entry.label)
        except ValueError as error:
            raise LungUSError(f"sequence {name!r}: {error}") from None
        if label is None:
            raise LungUSError(
                f"sequence {name!r} has no {scheme} label; choose one of {', '.join(LABEL_SCHEMES[scheme])}"
            )
        checked.append(LabeledSequence(entry.sequence, entry.patient.strip(), label, entry.zone.strip()))
    if not checked:
        raise LungUSError("no clips to export: check at least one sequence")
    return checked


@dataclass
class TrainingSet:
    """What :func:`export_training_set` wrote: the manifest, each clip's export, the validation issues."""

    manifest: Path
    exported: list[ExportResult]
    issues: list[Any] = field(default_factory=list)  # lungus.data.manifests.manifest.ManifestIssue

    @property
    def failed(self) -> list[ExportResult]:
        return [r for r in self.exported if r.path is None]

    @property
    def warnings(self) -> list[str]:
        return [issue.format(self.manifest) for issue in self.issues if issue.severity != "error"]

    def describe(self) -> str:
        written = len(self.exported) - len(self.failed)
        clips = "1 clip" if written == 1 else f"{written} clips"
        lines = [f"{clips} and {self.manifest.name} written to {self.manifest.parent}"]
        lines += [f"not exported: {r.sequence_name}: {r.error}" for r in self.failed]
        lines += self.warnings
        return "\n".join(lines)


def export_training_set(
    entries: Iterable[LabeledSequence],
    folder: str | os.PathLike,
    scheme: str,
    *,
    suffix: str = ".seq.nrrd",
    progress: Progress | None = None,
) -> TrainingSet:
    """Write each sequence to ``folder``/clips/ and ``folder``/manifest.csv (columns clip,
    patient[, zone], ``scheme``) with clip paths relative to it.

    A sequence that cannot be exported is left out (its error is in the result); if none is
    left, or the manifest has errors, LungUSError. ``folder`` must not already hold a manifest.
    """
    from lungus.data.manifests.manifest import Manifest

    entries = check_entries(entries, scheme)
    folder = Path(folder).expanduser()
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.exists():
        raise LungUSError(
            "this folder already holds a training set; choose a new or empty folder", manifest_path
        )
    clips_folder = folder / CLIPS_FOLDER
    clips_folder.mkdir(parents=True, exist_ok=True)
    exported = export_sequences([e.sequence for e in entries], clips_folder, suffix, progress=progress)
    with_zone = any(e.zone for e in entries)
    rows = []
    for entry, result in zip(entries, exported):
        if result.path is None:
            continue
        row = {"clip": Path(os.path.relpath(result.path, folder)).as_posix(), "patient": entry.patient}
        if with_zone:
            row["zone"] = entry.zone
        row[scheme] = entry.label
        rows.append(row)
    if not rows:
        raise LungUSError(f"no clip could be exported (first error: {exported[0].error})", folder)
    manifest = Manifest.from_rows(manifest_path, rows)
    issues = validate_manifest(manifest, check_files=True)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        raise LungUSError(f"the manifest is not valid: {errors[0].format(manifest_path)}")
    manifest.save()
    return TrainingSet(manifest=manifest_path, exported=exported, issues=issues)
