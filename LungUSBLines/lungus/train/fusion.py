"""`lungus train --model fusion`: a frame classifier on the fused features of trained backbones
(docs/frame-fusion.md), the interstitial-syndrome study's method.

Each frame of each training clip is embedded by every backbone (lungus.features, cached), the
embeddings concatenated and standardised, and a scikit-learn classifier fitted to frame labels:
the clip's own label on every frame, or per-frame labels from masks (the mask column, or the
AnnotateUltrasound files beside the clips) or a frames manifest (lungus.data.labels.frame_labels).
``filter_frames`` drops frames of B-line clips that show no B-line evidence (by mask, or by a model's
frame score) from training, as the study did. Clip
scores come from frame scores by the clip rule (``eval_aggregation``). Patients never straddle a
split: ``folds`` > 1 gives out-of-fold predictions for every clip (the folds of
``lungus train --folds``), then one model fitted on all of them; otherwise the validation split of
``fold`` / ``val_fraction`` scores a model fitted on the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lungus.atomic import atomic_write_text
from lungus.data.labels.annotation_labels import parse_annotation_source
from lungus.data.labels.frame_labels import UNLABELLED, FrameLabels, mask_frame_labels
from lungus.data.labels.schemes import scheme_classes
from lungus.data.labels.tasks import SEG_TASK, is_ordinal
from lungus.data.manifests.label_sources import labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
from lungus.errors import LungUSError
from lungus.features.backbones import Backbone, resolve_backbones
from lungus.features.store import FeatureStore
from lungus.models.fusion import CLASSIFIERS, FUSION, FusedFrameClassifier
from lungus.models.model_file import ModelCard, save_model_file
from lungus.models.registry import build_model
from lungus.operating_point import OperatingPoint
from lungus.predict.windows import aggregate_windows
from lungus.progress import Progress
from lungus.train.classical import fit_classifier, head_tensors
from lungus.train.config import TrainConfig
from lungus.train.operating_points import choose_on_predictions, cross_fitted_points, decided

#: The frame-label and frame-filter setting that reads the manifest's mask column (the annotation
#: sources of lungus.data.labels.annotation_labels read the AnnotateUltrasound files beside the clips).
MASKS = "masks"


@dataclass
class ClipFrames:
    """One clip's fused frame features and what training knows about its frames."""

    row: int
    clip: str
    patient: str
    features: np.ndarray  # (T, D) float32
    targets: np.ndarray  # (T,) class per frame, UNLABELLED where unknown
    clip_target: np.ndarray  # (K,) the clip's label distribution
    evidence: np.ndarray | None  # (T,) bool: the frame shows B-lines (filter_frames), None: no filter


@dataclass
class FusionResult:
    run_dir: Path
    model_path: Path
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]]

    def summary_line(self) -> str:
        parts = [f"fusion of {self.metrics.get('n_clips', 0)} clips"]
        for key in ("auc", "balanced_accuracy"):
            if self.metrics.get(key) is not None:
                low, high = self.metrics.get(f"{key}_ci") or (float("nan"), float("nan"))
                parts.append(f"{key} {self.metrics[key]:.3f} [{low:.3f}, {high:.3f}]")
        return "; ".join(parts) + f" -> {self.model_path}"


def from_masks(setting: str | None) -> bool:
    """Whether a frame_labels / filter_frames setting reads class masks: 'masks' (the mask column) or an
    annotation source ('annotations', 'annotations-staple', 'annotations:RATER')."""
    return setting == MASKS or parse_annotation_source(setting) is not None


def frame_labels_from_masks(manifest: Manifest, row: int, source_frames: np.ndarray, source: str,
                            cache: ClipCache) -> np.ndarray:
    """Frame labels of one clip from its class masks at the original frames (so thin B-lines are not lost to
    resizing): the mask column's file for 'masks', the AnnotateUltrasound files beside the clip for an
    annotation source (drawn once into the clip cache, as segmentation training draws them)."""
    from lungus.data.labels.annotation_labels import annotation_mask_file, read_annotation_mask_file
    from lungus.data.labels.label_images import read_label_masks
    from lungus.data.pipeline.training_sets import annotation_masks_folder, annotation_spacing

    annotation = parse_annotation_source(source)
    if annotation is not None:
        rater, method = annotation
        path = annotation_mask_file(manifest.clip_path(row), annotation_masks_folder(manifest, cache),
                                    rater=rater, method=method, spacing_mm=annotation_spacing(manifest, row))
        return mask_frame_labels(read_annotation_mask_file(path))[source_frames]
    path = manifest.resolve(row, "mask") if "mask" in manifest.columns else None
    if path is None:
        raise LungUSError(f"line {manifest.lines[row]}: frame labels from masks need a mask file in the mask "
                          "column", manifest.path)
    return mask_frame_labels(read_label_masks(path))[source_frames]


class FrameScores:
    """P(B-lines) per frame from a trained clip classifier run on one-frame windows (filter_frames MODEL)."""

    def __init__(self, path: str, cache: ClipCache, device: torch.device) -> None:
        from lungus.models.model_file import load_model_file
        from lungus.models.normalisation import normalise_frames

        loaded = load_model_file(path, map_location=device)
        if loaded.card.kind != "classifier":
            raise LungUSError("filter-frames needs a clip classifier's frame scores or 'masks'", path)
        self.model, self.card, self.cache, self.device = loaded.model, loaded.card, cache, device
        self.preprocessing = Preprocessing.from_card(loaded.card.preprocessing)
        self.normalise = lambda frames: normalise_frames(frames, loaded.card.preprocessing["normalisation"])

    @torch.no_grad()
    def __call__(self, clip_path: Path, source_frames: np.ndarray) -> np.ndarray:
        prepared = self.cache.get(clip_path, self.preprocessing)
        if not np.array_equal(prepared.source_frames, source_frames):
            raise LungUSError("the filter model's frame rate differs from the fusion run's; filter with a model "
                              "of the same target_fps", clip_path)
        scores = []
        for start in range(0, len(prepared.frames), 64):
            x = self.normalise(prepared.frames[start:start + 64]).to(self.device)[:, None, None]
            scores.append(1.0 - self.model(x).float().softmax(dim=1)[:, 0].cpu())
        return torch.cat(scores).numpy()


def gather_frames(config: TrainConfig, manifest: Manifest, rows: list[int], soft: np.ndarray, hard: np.ndarray,
                  backbones: list[Backbone], store: FeatureStore, log: Callable[[str], None],
                  progress: Progress | None) -> tuple[list[ClipFrames], list[tuple[str, str]]]:
    """Every readable clip's fused features, frame targets and B-line evidence; (clip, error) of the rest."""
    frame_labels = None
    if config.frame_labels is not None and not from_masks(config.frame_labels):
        frame_labels = FrameLabels.load(config.frame_labels, config.task)
    scorer = None
    if config.filter_frames is not None and not from_masks(config.filter_frames):
        scorer = FrameScores(config.filter_frames, store.clip_cache, store.device)
    clips: list[ClipFrames] = []
    failed: list[tuple[str, str]] = []
    for index, row in enumerate(rows):
        name = manifest.clips[row]
        try:
            path = manifest.clip_path(row)
            features, source_frames = store.fused(backbones, path)
            if from_masks(config.frame_labels):
                targets = frame_labels_from_masks(manifest, row, source_frames, config.frame_labels,
                                                  store.clip_cache)
            elif frame_labels is not None:
                targets = frame_labels.clip_labels(name, source_frames)
            else:
                targets = np.full(len(source_frames), hard[row], dtype=np.int64)
            evidence = None
            if from_masks(config.filter_frames):
                evidence = frame_labels_from_masks(manifest, row, source_frames, config.filter_frames,
                                                   store.clip_cache) == 1
            elif scorer is not None:
                evidence = scorer(path, source_frames) >= 0.5
            clips.append(ClipFrames(row, name, manifest.patients[row], features, targets, soft[row], evidence))
        except LungUSError as error:
            failed.append((name, str(error)))
            log(f"skipping {name}: {error}")
        if progress is not None:
            progress(index + 1, len(rows), "clips")
    if not clips:
        raise LungUSError(f"none of the {len(rows)} clips could be read" +
                          (f" (first: {failed[0][1]})" if failed else ""), manifest.path)
    return clips, failed


def training_frames(clips: list[ClipFrames]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(features, targets) of the labelled frames that train, and what the filter dropped: frames
    labelled with B-lines (class > 0) but without B-line evidence."""
    features, targets, dropped, kept = [], [], 0, 0
    for clip in clips:
        keep = clip.targets != UNLABELLED
        if clip.evidence is not None:
            without = keep & (clip.targets > 0) & ~clip.evidence
            dropped += int(without.sum())
            keep &= ~without
        kept += int(keep.sum())
        features.append(clip.features[keep])
        targets.append(clip.targets[keep])
    return np.concatenate(features), np.concatenate(targets), {"frames_kept": kept, "frames_dropped": dropped}


def fusion_model(backbones: list[Backbone], head: dict[str, Any], state: dict[str, torch.Tensor],
                 num_classes: int) -> FusedFrameClassifier:
    """The fusion model of these backbones and this fitted head (lungus.train.classical.head_tensors)."""
    model = build_model(FUSION, num_classes, backbones=[b.description for b in backbones], head=head)
    for encoder, backbone in zip(model.encoders, backbones):
        encoder.load_state_dict(backbone.encoder.state_dict())
    missing = [name for name in model.state_dict() if not name.startswith("encoders.") and name not in state]
    if missing:
        raise RuntimeError(f"the fitted classifier lacks {missing}")
    model.load_state_dict(state, strict=False)
    return model.eval()


def fit_fusion(config: TrainConfig, clips: list[ClipFrames], backbones: list[Backbone],
               num_classes: int) -> tuple[FusedFrameClassifier, dict[str, int]]:
    features, targets, counts = training_frames(clips)
    fitted = fit_classifier(config.classifier, features, targets, num_classes, seed=config.seed,
                            balanced=config.class_weights)
    head, state = head_tensors(fitted)
    counts["class_frames"] = {int(k): int((targets == k).sum()) for k in range(num_classes)}
    return fusion_model(backbones, head, state, num_classes), counts


@torch.no_grad()
def predict_clips(model: FusedFrameClassifier, clips: list[ClipFrames], rule: str) -> list[dict[str, Any]]:
    """Each clip's distribution: its frames' probabilities (the model's head on the cached
    features, as its forward computes them) joined by the clip rule."""
    predictions = []
    for clip in clips:
        frames = model.classify_features(torch.from_numpy(clip.features)).float()
        predictions.append({"index": clip.row, "clip": clip.clip, "patient": clip.patient,
                            "target": clip.clip_target.tolist(),
                            "probabilities": aggregate_windows(frames, rule).tolist()})
    return predictions


def _metrics(predictions: list[dict[str, Any]], task: str, n_boot: int) -> dict[str, Any]:
    from lungus.evaluate.summaries import classification_summary

    return classification_summary(predictions, ordinal=is_ordinal(task), n_boot=n_boot)[0]


def _card(config: TrainConfig, model: FusedFrameClassifier, backbones: list[Backbone], label_source: str,
          clips: list[ClipFrames], counts: dict[str, Any], metrics: dict[str, Any], manifest: Manifest,
          operating_point: OperatingPoint | None) -> ModelCard:
    from lungus.train.setup import json_architecture, plain_metrics, simulated_clips

    preprocessing = config.card_preprocessing(backbones[0].description["normalisation"])
    preprocessing.update(frames=1, eval_stride=1, eval_flip=False)
    class_names = scheme_classes(config.task)
    return ModelCard(
        task=config.task, class_names=list(class_names), architecture=json_architecture(model),
        preprocessing=preprocessing, label_source=label_source,
        training_data={"clips": len(clips), "patients": len({c.patient for c in clips}),
                       "frames": counts["frames_kept"],
                       "class_counts": {class_names[k]: n for k, n in counts["class_frames"].items()},
                       "simulated_clips": simulated_clips(manifest, [c.row for c in clips])},
        validation_metrics=plain_metrics(metrics), name=Path(config.out).name,
        extra={"config": config.to_dict(), "backbones": [b.source for b in backbones],
               "classifier": config.classifier, "frame_labels": config.frame_labels or "clip",
               "filter_frames": config.filter_frames, "frames_dropped": counts["frames_dropped"]},
        operating_point=operating_point.to_card_field() if operating_point is not None else {},
    ).stamped()


def train_fusion(config: TrainConfig, *, log: Callable[[str], None] = print,
                 progress: Progress | None = None) -> FusionResult:
    """Fit, score and save a fusion model as ``config`` says (module docstring); writes RUN/model.pt,
    RUN/config.json and, with a validation split or folds, RUN/metrics.json, predictions.csv and figures."""
    from lungus.device import resolve_device
    from lungus.evaluate.report import write_classification_report, write_json
    from lungus.train.cv import CV_METRICS, fold_assignment
    from lungus.train.setup import default_label_source, split_rows

    if config.task == SEG_TASK:
        raise LungUSError("a fusion model classifies frames for a clip task (bline2, bline3, lus4), not seg")
    if config.classifier not in CLASSIFIERS:
        raise LungUSError(f"training config: classifier {config.classifier!r} is not one of {', '.join(CLASSIFIERS)}")
    if (from_masks(config.frame_labels) or from_masks(config.filter_frames)) and config.task != "bline2":
        raise LungUSError("masks say whether a frame has B-lines, not which kind: frame labels or filters from "
                          "masks are for --task bline2")
    manifest = Manifest.load(config.manifest)
    label_source = config.label_source or default_label_source(manifest, config.task)
    labels = labels_of(manifest, label_source, config.task)
    rows = [r for r in range(len(manifest)) if labels.hard[r] >= 0]
    if not rows:
        raise LungUSError(f"no clip has a {label_source} label for {config.task}", manifest.path)
    class_names = scheme_classes(config.task)
    backbones = resolve_backbones(config.backbones or "")
    device = resolve_device(config.device)
    store = FeatureStore(config.feature_folder, config.preprocessing(), ClipCache(config.cache_folder), device)
    log(f"fusion: features of {len(rows)} clips from {', '.join(b.name for b in backbones)} "
        f"(cached in {store.folder})")
    clips, failed = gather_frames(config, manifest, rows, labels.soft.astype(np.float32), labels.hard, backbones,
                                  store, log, progress)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    predictions: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    point: OperatingPoint | None = None
    if config.folds > 1:
        # Operating points as train.cv chooses them: each fold's on the other folds' predictions,
        # the model fitted on all clips on all out-of-fold predictions.
        folds = fold_assignment(manifest, config)
        by_fold = []
        for k in range(config.folds):
            held_out = [c for c in clips if folds[c.row] == k]
            model, _ = fit_fusion(config, [c for c in clips if folds[c.row] != k], backbones, len(class_names))
            by_fold.append([{**p, "fold": k} for p in predict_clips(model, held_out, config.eval_aggregation)])
            log(f"fold {k + 1}/{config.folds}: {len(held_out)} held-out clips")
        raw = [p for fold in by_fold for p in fold]
        point = choose_on_predictions(raw, config, f"out-of-fold predictions of {config.folds} fold fits: "
                                      f"{len(raw)} clips", log)
        predictions = [p for fold, fold_point in zip(by_fold, cross_fitted_points(by_fold, config, log))
                       for p in decided(fold, fold_point)]
        metrics = _metrics(predictions, config.task, n_boot=1000)
        write_json(run_dir / CV_METRICS, metrics)
        model, counts = fit_fusion(config, clips, backbones, len(class_names))
        card_metrics, trained = {"cv_" + key: value for key, value in metrics.items()}, clips
    else:
        train_rows, val_rows = split_rows(manifest, [c.row for c in clips], labels.hard, config)
        validation = [c for c in clips if c.row in set(val_rows)]
        trained = [c for c in clips if c.row in set(train_rows)]
        model, counts = fit_fusion(config, trained, backbones, len(class_names))
        if validation:
            raw = predict_clips(model, validation, config.eval_aggregation)
            point = choose_on_predictions(raw, config, f"validation split: {len(raw)} clips", log)
            predictions = decided(raw, point)
            metrics = _metrics(predictions, config.task, n_boot=1000)
        card_metrics = metrics
    if predictions:
        extra = {"fold": [p["fold"] for p in predictions]} if config.folds > 1 else None
        write_classification_report(run_dir, predictions, class_names, metrics, extra_columns=extra)
    if counts["frames_dropped"]:
        log(f"filter-frames ({config.filter_frames}): dropped {counts['frames_dropped']} B-line-labelled frames "
            f"without B-line evidence, kept {counts['frames_kept']}")
    for name, error in failed:
        log(f"not used: {name}: {error}")
    card = _card(config, model, backbones, label_source, trained, counts, card_metrics, manifest, point)
    atomic_write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
    path = save_model_file(run_dir / "model.pt", model, card)
    return FusionResult(run_dir, path, metrics, predictions)
