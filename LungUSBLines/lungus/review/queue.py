"""The review queue: the clips of `lungus infer` results, ranked by how much a review would teach
(docs/review.md#review-queue).

Each clip gets up to five signals, each in [0, 1] (1: review this first), kept in
``QueueEntry.reasons`` so a reviewer sees why a clip is where it is:

- ``uncertainty``: how close the model is to changing its mind. bline2: 1 at the decision
  threshold (P(present) = ``threshold``), falling linearly to 0 at P = 0 and 1; bline3 and lus4:
  1 minus the margin between the two most likely classes. With several results for a clip, the
  members' mean distribution is used.
- ``member_disagreement``: several results folders scoring the same clip (ensemble members,
  fold models, seeds) that disagree: the mutual information between the members' predictions
  and the class (BALD, Houlsby et al. 2011), ``H(mean p) - mean H(p)``, divided by its largest
  possible value ``log(min(classes, members))``. Absent with one result.
- ``classifier_segmenter_disagreement``: the classifier's P(B-lines) (1 - P(first class)) against
  the segmenter's B-line evidence, the share of its frames with a B-line divided by the share that
  makes a clip "discrete" (lungus.data.labels.bline_rules.DISCRETE_FRAME_SHARE, capped at 1): the
  absolute difference. "present" at 0.95 with no B-line pixels gives 0.95. Needs both models.
- ``crowd_model_disagreement`` (with a manifest): the total-variation distance between the
  model's distribution and the reference opinions of ``label_source`` (default: crowd-soft when the
  manifest has crowd opinions, else the task's column, else the expert majority); for one hard
  label it is 1 - P(that label).
- ``mask_model_disagreement`` (with a manifest whose ``mask`` column names annotated masks, and a
  segmenter): the share of frames annotated in both where one says "B-lines" and the other does
  not (B-lines counted by the same rules for both, lungus.data.labels.blines; frames nobody
  annotated, all IGNORE_INDEX, are left out).

The score is the weighted mean of the signals a clip has (``QueueWeights``; a signal a clip lacks
leaves the mean, it does not count as 0). Ties are broken by the clip's path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lungus.data.csvfile import read_csv_table, write_records_csv
from lungus.data.labels.bline_rules import DISCRETE_FRAME_SHARE
from lungus.errors import LungUSError

SIGNALS = (
    "uncertainty",
    "member_disagreement",
    "classifier_segmenter_disagreement",
    "crowd_model_disagreement",
    "mask_model_disagreement",
)
QUEUE_COLUMNS = ("rank", "clip", "score", "model_label", "probability", "patient", "zone", *SIGNALS)
JOURNAL_NAME = "clips.jsonl"


@dataclass(frozen=True)
class QueueWeights:
    """How much each signal counts in the score (>= 0; at least one > 0).

    The disagreement with the reference label counts 3 by default: a label that a confident model
    contradicts is the likeliest to be wrong, and only a review can fix a wrong label. Above 2 is
    needed, not a matter of taste: in bline2 both uncertainty and this disagreement are linear in
    the same probability, and at exactly 2 they cancel, so every clip whose model contradicts its
    label scores 2/3 whatever the model's confidence (seen in the study's first queue, before any
    test result: docs/review.md#does-the-queue-help). With 3 the contradicted labels come first,
    the most confidently contradicted first, then the other clips by uncertainty."""

    uncertainty: float = 1.0
    member_disagreement: float = 1.0
    classifier_segmenter_disagreement: float = 1.0
    crowd_model_disagreement: float = 3.0
    mask_model_disagreement: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise LungUSError(f"review queue weight {item.name} must be a number >= 0, got {value!r}")
        if not any(getattr(self, item.name) > 0 for item in fields(self)):
            raise LungUSError("review queue weights: at least one must be above 0")

    @classmethod
    def parse(cls, settings: Iterable[str]) -> QueueWeights:
        """From ``NAME=VALUE`` texts (the CLI's ``--weight``); unnamed signals keep their default."""
        values: dict[str, float] = {}
        for text in settings:
            name, _, number = str(text).partition("=")
            name = name.strip()
            if name not in SIGNALS or not number.strip():
                raise LungUSError(f"--weight {text!r}: expected NAME=VALUE with NAME one of {', '.join(SIGNALS)}")
            try:
                values[name] = float(number)
            except ValueError:
                raise LungUSError(f"--weight {text!r}: {number.strip()!r} is not a number") from None
        return cls(**values)


@dataclass(frozen=True)
class QueueConfig:
    """How the queue is built: the weights, bline2's decision threshold, the reference labels."""

    weights: QueueWeights = field(default_factory=QueueWeights)
    threshold: float = 0.5  # bline2: P(present) at which the decision flips
    label_source: str | None = None  # crowd_model_disagreement's reference (lungus.data.manifests.label_sources)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, QueueWeights):
            raise LungUSError("review queue: weights must be a QueueWeights")
        if not 0.0 < float(self.threshold) < 1.0:
            raise LungUSError(f"review queue: threshold must be in (0, 1), got {self.threshold}")


@dataclass(frozen=True)
class QueueEntry:
    """One clip in the queue: its rank (1 = first), its score (higher = review first), every signal
    behind the score, what the model said and the clip's patient and zone (from the manifest)."""

    rank: int
    clip: str  # the clip file, absolute
    score: float
    reasons: dict[str, float]
    model_label: str | None = None
    probability: float | None = None  # the model's probability of model_label
    patient: str | None = None
    zone: str | None = None

    def record(self) -> dict[str, Any]:
        """Its queue CSV row."""
        row: dict[str, Any] = {
            "rank": self.rank,
            "clip": self.clip,
            "score": round(self.score, 6),
            "model_label": self.model_label,
            "probability": None if self.probability is None else round(self.probability, 6),
            "patient": self.patient,
            "zone": self.zone,
        }
        row.update({name: round(value, 6) for name, value in self.reasons.items()})
        return row


# ---------------------------------------------------------------------------------------- reading results


def _journal_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_file() and path.name == JOURNAL_NAME:
        return path.parent
    if path.is_dir() and (path / JOURNAL_NAME).is_file():
        return path
    if not path.exists():
        raise LungUSError("no such results folder", path)
    raise LungUSError(f"not a lungus infer output folder or its {JOURNAL_NAME} (docs/architecture.md#inference-outputs)",
                      path)


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The scored clips' records of one `lungus infer` output folder (or its clips.jsonl), one per
    clip; clips that failed (``error``) are left out. LungUSError if there is none."""
    from lungus.infer.journal import latest_records, read_journal

    folder = _journal_folder(path)
    records = [r for r in latest_records(read_journal(folder)) if not r.get("error")]
    if not records:
        raise LungUSError(f"{JOURNAL_NAME} holds no scored clip", folder)
    return records


def _clip_key(record: dict[str, Any]) -> str:
    """Which clip a record is about: its file (absolute), else its name."""
    return os.path.normpath(record.get("path") or record["clip"])


@dataclass
class _ClipResults:
    """Everything the results say about one clip: one record per results folder that scored it."""

    key: str
    name: str  # the clip's name in the first results (the manifest's clip text when inferred from a manifest)
    records: list[dict[str, Any]] = field(default_factory=list)

    def distributions(self, class_names: list[str]) -> np.ndarray:
        """(members, K) class probabilities of the records that have a classifier."""
        rows = [[float(r["probabilities"][name]) for name in class_names] for r in self.records
                if r.get("probabilities")]
        return np.asarray(rows, dtype=float).reshape(-1, len(class_names))

    def segmenter_frames(self) -> list[dict[int, bool]]:
        """Per record with a segmenter: frame -> "shows a B-line" for the frames it analysed."""
        found = []
        for record in self.records:
            if not record.get("segmenter"):
                continue
            frames = {int(f["frame"]): f["bline_count"] > 0 for f in record.get("frames") or ()
                      if f.get("bline_count") is not None}
            if frames:
                found.append(frames)
        return found


def _class_names(results: Sequence[tuple[Path, list[dict[str, Any]]]]) -> list[str] | None:
    """The classes every classifier record shares; LungUSError naming the folder that differs."""
    names: list[str] | None = None
    first: Path | None = None
    for folder, records in results:
        for record in records:
            if not record.get("probabilities"):
                continue
            these = list(record["probabilities"])
            if names is None:
                names, first = these, folder
            elif these != names:
                raise LungUSError(f"results of a {'/'.join(these)} classifier beside {first}'s "
                                  f"{'/'.join(names)}: rank results of one task together", folder)
    return names


# ---------------------------------------------------------------------------------------- signals


def uncertainty(probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """1 at the decision boundary, 0 when the model is sure (module docstring)."""
    if len(probabilities) == 2:
        p = float(probabilities[1])
        distance = threshold - p if p < threshold else p - threshold
        return float(1.0 - distance / (threshold if p < threshold else 1.0 - threshold))
    top = np.sort(probabilities)[::-1]
    return float(1.0 - (top[0] - top[1]))


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def member_disagreement(members: np.ndarray) -> float | None:
    """Normalised BALD mutual information of (members, K) distributions; None for one member."""
    n_members, n_classes = members.shape
    if n_members < 2:
        return None
    information = float(_entropy(members.mean(axis=0)) - _entropy(members).mean())
    return float(np.clip(information / math.log(min(n_classes, n_members)), 0.0, 1.0))


def _model_label(mean: np.ndarray, class_names: list[str], threshold: float) -> int:
    if len(class_names) == 2:
        return int(mean[1] >= threshold)
    return int(np.argmax(mean))


def segmenter_evidence(frames: dict[int, bool]) -> float:
    """The share of the segmenter's frames with a B-line, over the share that makes a clip
    "discrete", capped at 1."""
    share = sum(frames.values()) / len(frames)
    return float(min(1.0, share / DISCRETE_FRAME_SHARE))


def _reference(manifest, label_source: str | None, task: str | None) -> tuple[str | None, np.ndarray | None]:
    """(source, (rows, K) reference distributions) for crowd_model_disagreement, or (None, None)."""
    from lungus.data.manifests.label_sources import available_sources, labels_of

    if task is None:
        return None, None
    if label_source is None:
        available = available_sources(manifest)
        preferred = (("crowd-soft",) if task in ("bline2", "bline3") else ()) + (task, "expert-majority")
        label_source = next((source for source in preferred if source in available), None)
        if label_source is None:
            return None, None
    labels = labels_of(manifest, label_source, task)
    totals = labels.soft.sum(axis=1, keepdims=True)
    return label_source, np.divide(labels.soft, totals, out=np.zeros_like(labels.soft), where=totals > 0)


def _annotated_bline_frames(manifest, row: int) -> dict[int, bool] | None:
    """Frame -> "shows a B-line" for the frames the row's mask annotates; None without a mask."""
    from lungus.data.labels.annotation_labels import IGNORE_INDEX, labelled_frames
    from lungus.data.labels.blines import analyse_masks
    from lungus.data.labels.label_images import read_label_masks

    if "mask" not in manifest.columns:
        return None
    path = manifest.resolve(row, "mask")
    if path is None:
        return None
    masks = read_label_masks(path)
    annotated = labelled_frames(masks)
    counts = analyse_masks(np.where(masks == IGNORE_INDEX, 0, masks).astype(np.uint8)).bline_count
    return {int(t): bool(counts[t] > 0) for t in np.flatnonzero(annotated)}


def mask_model_disagreement(annotated: dict[int, bool], segmenter_runs: list[dict[int, bool]]) -> float | None:
    """Share of frames, annotated and analysed, where the mask and the segmenter differ about
    B-lines (mean over segmenters); None when no frame is both."""
    values = []
    for frames in segmenter_runs:
        shared = sorted(set(frames) & set(annotated))
        if shared:
            values.append(sum(frames[t] != annotated[t] for t in shared) / len(shared))
    return float(np.mean(values)) if values else None


# ---------------------------------------------------------------------------------------- the queue


@dataclass
class _ManifestView:
    """The manifest's rows found by clip file or clip text, and the reference distributions."""

    manifest: Any
    by_path: dict[str, int]
    by_text: dict[str, int]
    reference: np.ndarray | None

    @classmethod
    def load(cls, path: str | os.PathLike, label_source: str | None, task: str | None) -> _ManifestView:
        from lungus.data.manifests.manifest import Manifest

        manifest = Manifest.load(path)
        manifest.require_columns("clip")
        # realpath: the batch records each clip's file with its links followed
        by_path = {os.path.realpath(manifest.clip_path(i)): i for i in range(len(manifest))}
        by_text = {text: i for i, text in enumerate(manifest.clips)}
        _, reference = _reference(manifest, label_source, task)
        return cls(manifest, by_path, by_text, reference)

    def row(self, clip: _ClipResults) -> int | None:
        found = self.by_path.get(os.path.realpath(clip.key))
        return found if found is not None else self.by_text.get(clip.name)

    def value(self, row: int, column: str) -> str | None:
        return self.manifest.rows[row].get(column) or None


def _gather(results: Sequence[str | os.PathLike]) -> tuple[list[_ClipResults], list[str] | None, str | None]:
    if isinstance(results, (str, os.PathLike)):
        results = [results]
    if not results:
        raise LungUSError("no results: give one or more `lungus infer` output folders")
    seen: set[Path] = set()
    loaded: list[tuple[Path, list[dict[str, Any]]]] = []
    for path in results:
        folder = _journal_folder(path).resolve()
        if folder not in seen:  # the same folder twice is one member, not two agreeing ones
            seen.add(folder)
            loaded.append((folder, read_results(folder)))
    class_names = _class_names(loaded)
    task = next((r.get("task") for _, records in loaded for r in records if r.get("probabilities")), None)
    clips: dict[str, _ClipResults] = {}
    for _, records in loaded:
        for record in records:
            key = _clip_key(record)
            clips.setdefault(key, _ClipResults(key, record["clip"])).records.append(record)
    return list(clips.values()), class_names, task


def _signals(clip: _ClipResults, class_names: list[str] | None, config: QueueConfig,
             view: _ManifestView | None, row: int | None) -> tuple[dict[str, float], str | None, float | None]:
    """(signals, model label, its probability) of one clip."""
    reasons: dict[str, float] = {}
    label = probability = None
    members = clip.distributions(class_names) if class_names else np.zeros((0, 0))
    segmenters = clip.segmenter_frames()
    if len(members):
        mean = members.mean(axis=0)
        k = _model_label(mean, class_names, config.threshold)
        label, probability = class_names[k], float(mean[k])
        reasons["uncertainty"] = uncertainty(mean, config.threshold)
        disagreement = member_disagreement(members)
        if disagreement is not None:
            reasons["member_disagreement"] = disagreement
        if segmenters:
            evidence = float(np.mean([segmenter_evidence(frames) for frames in segmenters]))
            reasons["classifier_segmenter_disagreement"] = abs(float(1.0 - mean[0]) - evidence)
        if view is not None and row is not None and view.reference is not None and view.reference[row].sum() > 0:
            reasons["crowd_model_disagreement"] = float(0.5 * np.abs(mean - view.reference[row]).sum())
    if view is not None and row is not None and segmenters:
        annotated = _annotated_bline_frames(view.manifest, row)
        if annotated:
            disagreement = mask_model_disagreement(annotated, segmenters)
            if disagreement is not None:
                reasons["mask_model_disagreement"] = disagreement
    return reasons, label, probability


def _score(reasons: dict[str, float], weights: QueueWeights) -> float:
    total = sum(getattr(weights, name) for name in reasons)
    if total <= 0:
        return 0.0
    return float(sum(getattr(weights, name) * value for name, value in reasons.items()) / total)


def review_queue(
    results: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    config: QueueConfig | None = None,
    top: int | None = None,
) -> list[QueueEntry]:
    """The clips of ``results`` (`lungus infer` output folders or their clips.jsonl; several for an
    ensemble's members, folds or seeds) ranked by how much a review would teach, first first.

    ``manifest``: a manifest CSV holding the clips (matched by file, else by its clip text): their
    patient and zone, the reference labels of crowd_model_disagreement (``config.label_source``)
    and the annotated masks of mask_model_disagreement. ``top``: keep only the first ``top``.
    """
    config = config or QueueConfig()
    if top is not None and top < 1:
        raise LungUSError(f"top must be at least 1, got {top}")
    clips, class_names, task = _gather(results)
    view = None if manifest is None else _ManifestView.load(manifest, config.label_source, task)
    scored = []
    for clip in clips:
        row = None if view is None else view.row(clip)
        reasons, label, probability = _signals(clip, class_names, config, view, row)
        patient = zone = None
        if view is not None and row is not None:
            patient, zone = view.value(row, "patient"), view.value(row, "zone")
        scored.append((_score(reasons, config.weights), clip.key, reasons, label, probability, patient, zone))
    scored.sort(key=lambda item: (-item[0], item[1]))
    if top is not None:
        scored = scored[:top]
    return [QueueEntry(rank, key, score, reasons, label, probability, patient, zone)
            for rank, (score, key, reasons, label, probability, patient, zone) in enumerate(scored, start=1)]


# ---------------------------------------------------------------------------------------- the CSV


def write_queue_csv(entries: Sequence[QueueEntry], path: str | os.PathLike) -> Path:
    """The queue as a CSV (QUEUE_COLUMNS; a signal a clip lacks is an empty cell), written atomically."""
    return write_records_csv(path, QUEUE_COLUMNS, (entry.record() for entry in entries))


def _number(text: str, column: str, line: int, path: Path) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise LungUSError(f"line {line}: column {column}: {text[:40]!r} is not a number", path)
    return value


def read_queue_csv(path: str | os.PathLike) -> list[QueueEntry]:
    """The entries of a queue CSV (write_queue_csv, `lungus review-queue`), in rank order; a
    relative clip path is taken from the CSV's folder."""
    path = Path(path)
    header, rows = read_csv_table(path, "review queue")
    missing = [name for name in ("rank", "clip", "score") if name not in header]
    if missing:
        raise LungUSError(f"line 1: missing column {', '.join(missing)}: not a review queue", path)
    entries = []
    for line, fields_ in rows:
        row = dict(zip(header, [value.strip() for value in fields_]))
        rank = _number(row.get("rank", ""), "rank", line, path)
        if rank is None or rank != int(rank) or rank < 1:
            raise LungUSError(f"line {line}: column rank: {row.get('rank', '')!r} is not a rank (1, 2, ...)", path)
        if not row.get("clip"):
            raise LungUSError(f"line {line}: column clip: blank clip path", path)
        score = _number(row.get("score", ""), "score", line, path)
        if score is None:
            raise LungUSError(f"line {line}: column score: blank", path)
        reasons = {name: value for name in SIGNALS
                   if (value := _number(row.get(name, ""), name, line, path)) is not None}
        clip = Path(row["clip"])
        entries.append(QueueEntry(
            rank=int(rank),
            clip=os.fspath(clip if clip.is_absolute() else os.path.normpath(path.parent.resolve() / clip)),
            score=score,
            reasons=reasons,
            model_label=row.get("model_label") or None,
            probability=_number(row.get("probability", ""), "probability", line, path),
            patient=row.get("patient") or None,
            zone=row.get("zone") or None,
        ))
    return sorted(entries, key=lambda entry: entry.rank)
