"""Everything a run needs before its first step: labels, the patient-level split, datasets,
the model, the loss, and how the finished model is written with its card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lungus.data.labels.schemes import SEG_CLASSES, scheme_classes
from lungus.data.labels.tasks import SEG_TASK, is_ordinal
from lungus.data.manifests.label_sources import available_sources, labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.clip_preparation import ClipCache
from lungus.data.pipeline.training_sets import (
    TrainingInput,
    classification_sets,
    segmentation_label_classes,
    segmentation_rows,
    segmentation_sets,
)
from lungus.errors import LungUSError
from lungus.models.model_file import ModelCard, save_model_file
from lungus.models.registry import available_models, build_model, get_spec
from lungus.models.weights import load_init_weights
from lungus.operating_point import OperatingPoint
from lungus.train.config import TrainConfig
from lungus.train.losses import ClipLoss, DiceCELoss, balanced_class_weights, balanced_weak_weights
from lungus.train.tasks import ClassificationTask, SegmentationTask


@dataclass
class PreparedRun:
    config: TrainConfig
    manifest: Manifest
    task: Any
    model: nn.Module
    criterion: nn.Module
    train_set: Any
    val_set: Any
    test_set: Any
    train_rows: list[int]
    label_source: str
    normalisation: dict[str, float]
    training_summary: dict[str, Any]

    def card(self, metrics: dict[str, Any], best_epoch: int, history: list[dict[str, Any]],
             operating_point: OperatingPoint | None = None) -> ModelCard:
        config = self.config
        preprocessing = config.card_preprocessing(self.normalisation)
        return ModelCard(
            task=config.task,
            class_names=list(self.task.class_names),
            architecture=json_architecture(self.model),
            preprocessing=preprocessing,
            label_source=self.label_source,
            training_data=self.training_summary,
            validation_metrics=plain_metrics(metrics),
            name=Path(config.out).name,
            extra={"best_epoch": best_epoch, "epochs_run": len(history), "config": config.to_dict(),
                   **_task_extra(self.task)},
            operating_point=operating_point.to_card_field() if operating_point is not None else {},
        ).stamped()

    def save_model(self, model: nn.Module, path: Path, metrics: dict[str, Any], best_epoch: int,
                   history: list[dict[str, Any]], operating_point: OperatingPoint | None = None) -> Path:
        return save_model_file(path, model, self.card(metrics, best_epoch, history, operating_point))


def _task_extra(task: Any) -> dict[str, Any]:
    """What the task records in the card (a segmenter: its label classes and post-processing,
    which SegmentationTask.from_card reads back)."""
    return task.card_extra() if hasattr(task, "card_extra") else {}


def json_architecture(model: nn.Module) -> dict[str, Any]:
    import json

    return json.loads(model.architecture_json)


def plain_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics a model card keeps: numbers, strings, None and lists of numbers."""
    keep = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float, str)) or value is None or (
            isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
        ):
            keep[key] = value
    return keep


def default_label_source(manifest: Manifest, task: str) -> str:
    """The task's own column if present, else simulator truth."""
    if task == SEG_TASK:
        return "truth" if "mask" in manifest.columns else "annotations"
    available = available_sources(manifest)
    for source in (task, "truth") + (("bline3",) if task == "bline2" else ()):
        if source in available:
            return source
    raise LungUSError(f"no labels for task {task}: add a {task} column or pass --label-source "
                      f"(this manifest offers {', '.join(available) or 'none'})", manifest.path)


#: `lungus simulate` writes the simulator's state of each clip here (lungus.sim.dataset); real
#: collections have no such column.
SIMULATOR_COLUMN = "sim_state"


def simulated_clips(manifest: Manifest, rows: list[int]) -> int:
    """How many of ``rows`` are simulated clips: the card records it (training_data
    ``simulated_clips``), so inference can warn that such a model is not for real clips."""
    if SIMULATOR_COLUMN not in manifest.columns:
        return 0
    states = manifest.column(SIMULATOR_COLUMN)
    return sum(1 for r in rows if states[r].strip())


def _count_patients(manifest: Manifest, rows: list[int]) -> int:
    patients = manifest.patients
    return len({patients[r] for r in rows})


def split_rows(manifest: Manifest, rows: list[int], hard: np.ndarray, config: TrainConfig) -> tuple[list[int], list[int]]:
    """(train, validation) rows, disjoint by patient; train-only rows are never validation rows."""
    train_only = manifest.train_only()
    if config.fold is not None:
        folds = manifest.folds()
        if all(f is None for f in folds):
            raise LungUSError("--fold needs a fold column; run `lungus split` first", manifest.path)
        val = [r for r in rows if folds[r] == config.fold and not train_only[r]]
        if not val:
            raise LungUSError(f"no clips in fold {config.fold}", manifest.path)
        return [r for r in rows if folds[r] != config.fold or train_only[r]], val
    if config.val_fraction == 0:
        return rows, []
    from lungus.data.manifests.split import assign_folds

    candidates = [r for r in rows if not train_only[r]]
    all_patients = manifest.patients
    patients = [all_patients[r] for r in candidates]
    n_folds = max(2, min(int(round(1 / config.val_fraction)), len(set(patients))))
    if len(set(patients)) < 2:
        raise LungUSError("a validation split needs at least two patients that are not train-only; pass "
                          "--val-fraction 0", manifest.path)
    fold_of = assign_folds(patients, hard[candidates], n_folds, seed=config.partition_seed)
    val = {r for r, f in zip(candidates, fold_of) if f == 0}
    return [r for r in rows if r not in val], sorted(val)


def classification_task(config: TrainConfig, class_names: tuple[str, ...],
                        normalisation: dict[str, float]) -> ClassificationTask:
    """The clip-classification task a config trains and evaluates with."""
    return ClassificationTask(class_names, ordinal=is_ordinal(config.task), window=config.frames,
                              stride=config.stride, aggregation=config.eval_aggregation,
                              normalisation=normalisation, flip=config.eval_flip)


def training_input(config: TrainConfig) -> TrainingInput:
    """The pieces of ``config`` the training sets are made with: preprocessing, cache, windows, augmentation."""
    return TrainingInput(preprocessing=config.preprocessing(), cache=ClipCache(config.cache_folder),
                         frames=config.frames, seed=config.seed, augment=config.augmentation())


def prepare_run(config: TrainConfig, *, test_rows: list[int] | None = None,
                log: Callable[[str], None] = print) -> PreparedRun:
    manifest = Manifest.load(config.manifest)
    test_rows = sorted(test_rows or [])
    excluded = set(test_rows)
    spec = get_spec(config.model)
    if not spec.trainable:
        raise LungUSError(f"training config: {config.model} models are assembled from trained model files "
                          f"(lungus ensemble), not trained; choose one of {', '.join(available_models())}")
    normalisation = spec.normalisation(config.pretrained, config.model_args)
    label_source = config.label_source or default_label_source(manifest, config.task)

    if config.task == SEG_TASK:
        class_names = tuple(c.name for c in SEG_CLASSES)
        label_classes = segmentation_label_classes(label_source)
        task = SegmentationTask(class_names, normalisation=normalisation, label_classes=label_classes)
        rows = segmentation_rows(manifest, label_source, [r for r in range(len(manifest)) if r not in excluded])
        if not rows:
            raise LungUSError(f"no clip has a mask file or a {label_source} clip label", manifest.path)
        hard = np.zeros(len(manifest), dtype=np.int64)
        train_rows, val_rows = split_rows(manifest, rows, hard, config)
        train_set, val_set, test_set = segmentation_sets(manifest, label_source, train_rows, val_rows, test_rows,
                                                         training_input(config), log)
        weak_labels = [train_set.clips.weak_label(i) for i in range(len(train_set.clips))]
        weak_weights = balanced_weak_weights([y for y in weak_labels if y is not None]) if config.class_weights \
            else None
        criterion = DiceCELoss(len(class_names), dice_weight=config.dice_weight, label_classes=label_classes,
                               weak_weight=config.weak_weight, weak_class_weights=weak_weights)
        summary = {"clips": len(train_rows), "patients": _count_patients(manifest, train_rows),
                   "frames": int(getattr(train_set, "n_frames", len(train_set)))}
    else:
        class_names = scheme_classes(config.task)
        labels = labels_of(manifest, label_source, config.task)
        rows = [r for r in range(len(manifest)) if labels.hard[r] >= 0 and r not in excluded]
        if not rows:
            raise LungUSError(f"no clip has a {label_source} label for {config.task}", manifest.path)
        train_rows, val_rows = split_rows(manifest, rows, labels.hard, config)
        # Validation and test clips are scored against hard labels of the same source.
        targets = labels.soft.astype(np.float32)
        train_set, val_set, test_set = classification_sets(manifest, targets, train_rows, val_rows, test_rows,
                                                           training_input(config), log)
        train_rows = train_set.clips.rows
        task = classification_task(config, class_names, normalisation)
        weights = balanced_class_weights(torch.from_numpy(train_set.targets)) if config.class_weights else None
        criterion = ClipLoss(weights, ordinal=is_ordinal(config.task), sord_alpha=config.sord_alpha,
                             label_smoothing=config.label_smoothing)
        counts = train_set.targets.sum(axis=0)
        summary = {"clips": len(train_rows), "patients": _count_patients(manifest, train_rows),
                   "class_counts": {name: round(float(c), 2) for name, c in zip(class_names, counts)}}
    summary["simulated_clips"] = simulated_clips(manifest, train_rows)
    log(f"{config.task}: {len(train_rows)} training clips, {len(val_rows)} validation clips"
        + (f", {len(test_rows)} held-out clips" if test_rows else "") + f"; labels: {label_source}")
    model = build_model(config.model, len(class_names), pretrained=config.pretrained, **config.model_args)
    if config.init:
        report = load_init_weights(model, config.init)
        log(report.summary())
        summary["init"] = {"source": config.init, "tensors_loaded": len(report.loaded),
                           "tensors_kept": len(report.kept)}
    return PreparedRun(config, manifest, task, model, criterion, train_set, val_set, test_set, train_rows,
                       label_source, normalisation, summary)
