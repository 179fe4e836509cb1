"""Evaluate a saved model file on a manifest: the engine behind `lungus evaluate`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungus.data.labels.tasks import SEG_TASK
from lungus.data.manifests.label_sources import available_sources, labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
from lungus.errors import LungUSError
from lungus.progress_lines import track


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    files: dict[str, Path]


def default_eval_labels(manifest: Manifest, task: str) -> str:
    """Truth when the manifest has it (simulated data), else the task's own column."""
    available = available_sources(manifest)
    if task == SEG_TASK:
        return "truth"
    for source in ("truth", task) + (("bline3",) if task == "bline2" else ()):
        if source in available:
            return source
    raise LungUSError(f"no reference labels for {task}: pass --labels (this manifest offers "
                      f"{', '.join(available) or 'none'})", manifest.path)


def evaluate_model(model_path: str | Path, manifest_path: str | Path, out: str | Path, *, labels: str | None = None,
                   device: str = "auto", n_boot: int = 1000, cache_dir: str | Path | None = None,
                   by: Sequence[str] = (), clip_evidence: bool = False,
                   log: Callable[[str], None] = print) -> Evaluation:
    """Score ``model_path`` on every labelled clip of a manifest; write DIR/metrics.json,
    predictions.csv and figures, and for a classifier the metrics by each manifest column in
    ``by`` (DIR/by_<column>.csv and .png). Unreadable clips are skipped and listed in metrics.json.

    A segmenter on a manifest without a ``mask`` column, or with ``clip_evidence``, is scored by
    the clip-level B-line evidence of its masks against the clip labels instead
    (lungus.evaluate.clip_evidence: DIR/clip_evidence.json, .csv and .png). Clips marked
    ``train_only`` (`lungus merge --train-only`) are not scored."""
    from lungus.data.pipeline.training_sets import ClipEvalSet, MaskEvalSet, readable_clips
    from lungus.device import resolve_device
    from lungus.evaluate.report import write_classification_report, write_json
    from lungus.evaluate.subgroups import write_subgroups
    from lungus.models.model_file import load_model_file
    from lungus.models.outputs import CheckedModel
    from lungus.predict.card import predictor_from_card

    loaded = load_model_file(model_path)
    card = loaded.card
    model = CheckedModel(loaded.model, card, model_path).eval()  # NaN or misshapen logits: one-line error
    torch_device = resolve_device(device)
    model.to(torch_device)
    manifest = Manifest.load(manifest_path)
    if by and card.task == SEG_TASK:
        raise LungUSError("--by breaks down clip-classifier metrics; this is a segmenter", model_path)
    if clip_evidence and card.task != SEG_TASK:
        raise LungUSError(f"--clip-evidence scores a segmenter's masks; this is a {card.task} classifier",
                          model_path)
    for column in by:
        manifest.column(column)  # before any clip is read
    source = labels or default_eval_labels(manifest, card.task)
    preprocessing = Preprocessing.from_card(card.preprocessing)  # layout, fan crop, size, fps as trained
    predictor = predictor_from_card(card)  # fed and finished exactly as `lungus infer` runs it
    cache = ClipCache(cache_dir if cache_dir is not None else Path(out).resolve().parent / ".lungus-cache")
    out = Path(out)

    if card.task == SEG_TASK and (clip_evidence or "mask" not in manifest.columns):
        return _evaluate_clip_evidence(predictor, model, card, model_path, manifest, out, labels, preprocessing,
                                       cache, torch_device, n_boot, log)
    if card.task == SEG_TASK:
        from lungus.data.labels.label_images import read_label_masks
        from lungus.evaluate.seg_report import write_segmentation_report
        from lungus.evaluate.summaries import segmentation_summary
        from lungus.predict.eval_sets import segment_eval_set

        rows = scored_rows(manifest, log)
        clips = readable_clips(manifest, rows, preprocessing, cache, log, "evaluation", mask_column="mask",
                               read_masks=read_label_masks)
        predictions = segment_eval_set(predictor, model, MaskEvalSet(clips), torch_device,
                                       track(range(len(clips)), "evaluate"))
        metrics, predictions = segmentation_summary(predictions, n_boot)
        metrics["labels"] = source
        files = write_segmentation_report(out, predictions, metrics)
    else:
        from lungus.evaluate.summaries import classification_summary
        from lungus.predict.eval_sets import classify_eval_set

        label_set = labels_of(manifest, source, card.task)
        rows = [r for r in scored_rows(manifest, log) if label_set.hard[r] >= 0]
        if not rows:
            raise LungUSError(f"no clip has a {source} label for {card.task}", manifest.path)
        clips = readable_clips(manifest, rows, preprocessing, cache, log, "evaluation")
        # Metrics are against hard reference labels, even for a soft source.
        targets = np.eye(len(card.class_names), dtype=np.float32)[label_set.hard[clips.rows]]
        predictions = classify_eval_set(predictor, model, ClipEvalSet(clips, targets), torch_device,
                                        track(range(len(clips)), "evaluate"))
        metrics, predictions = classification_summary(predictions, ordinal=predictor.ordinal, n_boot=n_boot)
        metrics["labels"] = source
        metrics["model"] = card.name or Path(model_path).parent.name
        decision = card.decision
        metrics["operating_point"] = decision.describe() if decision else "none: the largest probability decides"
        tables, by_files = write_subgroups(out, predictions, card.class_names, manifest, by,
                                           ordinal=predictor.ordinal, n_boot=n_boot)
        if tables:
            metrics["by"] = tables
        files = {**write_classification_report(out, predictions, card.class_names, metrics), **by_files}
    skipped = list(clips.failed)  # (clip, error) of each clip that could not be read
    if skipped:
        metrics["skipped"] = [{"clip": n, "error": e} for n, e in skipped]
        write_json(out / "metrics.json", metrics)
    return Evaluation(metrics, predictions, skipped, files)


def scored_rows(manifest: Manifest, log: Callable[[str], None]) -> list[int]:
    """The manifest's rows an evaluation scores: all but the train-only clips (said in the log)."""
    rows = manifest.scored_rows()
    if len(rows) < len(manifest):
        log(f"not scored: {len(manifest) - len(rows)} train-only clips (they train every fold's models)")
    if not rows:
        raise LungUSError("every clip is train-only: nothing to score", manifest.path)
    return rows


def _evaluate_clip_evidence(predictor, model, card, model_path: str | Path, manifest: Manifest, out: Path,
                            labels: str | None, preprocessing: Preprocessing, cache: ClipCache,
                            torch_device, n_boot: int, log: Callable[[str], None]) -> Evaluation:
    """The segmenter on every clip with a B-line or severity label, its masks' evidence scored
    against those labels (lungus.evaluate.clip_evidence)."""
    from lungus.data.pipeline.training_sets import readable_clips
    from lungus.evaluate.clip_evidence import BLINE_SCHEME, ClipEvidence, clip_labels, evaluate_clip_evidence
    from lungus.predict.eval_sets import segment_clip_evidence

    source = labels or default_eval_labels(manifest, BLINE_SCHEME)
    found = clip_labels(manifest, source)  # before any clip is read
    labelled = found.blines >= 0
    if found.severity is not None:
        labelled |= found.severity >= 0
    rows = [r for r in scored_rows(manifest, log) if labelled[r]]
    if not rows:
        raise LungUSError(f"no clip has a {source} label", manifest.path)
    clips = readable_clips(manifest, rows, preprocessing, cache, log, "evaluation")
    records = segment_clip_evidence(predictor, model, clips, torch_device, track(range(len(clips)), "evaluate"))
    metrics, files = evaluate_clip_evidence([ClipEvidence(r["clip"], r["evidence"]) for r in records], manifest,
                                            out, labels=source, n_boot=n_boot, skipped=clips.failed,
                                            source=str(model_path), segmenter=card.name or Path(model_path).parent.name)
    return Evaluation(metrics, records, list(clips.failed), files)
