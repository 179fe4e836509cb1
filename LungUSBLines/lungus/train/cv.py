"""K-fold cross-validation by patient: each fold is held out once, the rest trains.

Model selection inside a fold (best epoch, early stopping) uses an inner split of
that fold's training patients, never the held-out fold, so the pooled out-of-fold
metrics are honest estimates for unseen patients. Folds that finished are not rerun,
so ``--resume`` after a kill continues with the fold that was interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.labels.schemes import scheme_classes
from lungus.data.labels.tasks import SEG_TASK, is_ordinal
from lungus.data.labels.weak_masks import parse_weak_source
from lungus.data.manifests.evidence_labels import clip_labels
from lungus.data.manifests.label_sources import labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.report import read_predictions, write_classification_report, write_json
from lungus.operating_point import OperatingPoint
from lungus.progress import Progress, part_progress
from lungus.train.config import FOLD_PLACEHOLDER, TrainConfig, fold_config
from lungus.train.distributed import init_distributed, shutdown_distributed
from lungus.train.operating_points import choose_on_predictions, cross_fitted_points, decided

CV_METRICS = "cv_metrics.json"


@dataclass
class CrossValidationResult:
    run_dir: Path
    metrics: dict[str, Any]
    fold_metrics: list[dict[str, Any]]
    predictions: list[dict[str, Any]]

    def summary_line(self) -> str:
        parts = [f"{len(self.fold_metrics)}-fold CV, {self.metrics['n_clips']} clips, "
                 f"{self.metrics['n_patients']} patients"]
        for key in ("auc", "kappa_quadratic", "accuracy"):
            if self.metrics.get(key) is not None:
                ci = self.metrics.get(f"{key}_ci")
                ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
                parts.append(f"{key} {self.metrics[key]:.3f}{ci_text}")
        parts.append(f"-> {self.run_dir / CV_METRICS}")
        return "; ".join(parts)


def fold_assignment(manifest: Manifest, config: TrainConfig) -> list[int | None]:
    """The manifest's fold column when it has exactly ``config.folds`` folds, else a fresh
    patient-level stratified assignment (deterministic per split seed); None for train-only rows
    (in every fold's training set)."""
    from lungus.data.manifests.split import manifest_folds
    from lungus.train.setup import default_label_source

    train_only = manifest.train_only()
    folds = [None if only else f for f, only in zip(manifest.folds(), train_only)]
    present = {f for f in folds if f is not None}
    if present == set(range(config.folds)):
        return folds
    if config.task == SEG_TASK:
        weak = parse_weak_source(config.label_source or "")
        strata = None if weak is None else clip_labels(manifest, weak).blines
    else:
        source = config.label_source or default_label_source(manifest, config.task)
        strata = labels_of(manifest, source, config.task).hard
    fresh = manifest_folds(manifest, strata, config.folds, seed=config.partition_seed)
    return [None if f < 0 else int(f) for f in fresh]


def cross_validate(config: TrainConfig, *, resume: bool = False, log: Callable[[str], None] = print,
                   progress: Progress | None = None) -> CrossValidationResult:
    from lungus.device import resolve_device
    from lungus.train.seeds import fit_seeds

    if config.task == SEG_TASK and parse_weak_source(config.label_source or "") is None:
        raise LungUSError("cross-validation is for clip classifiers and for segmenters taught by clip labels "
                          "(--label-source weak:SOURCE); train a segmenter on masks with --fold or --val-fraction",
                          config.manifest)
    context = init_distributed(resolve_device(config.device))
    try:
        manifest = Manifest.load(config.manifest)
        folds = fold_assignment(manifest, config)
        if config.task == SEG_TASK:
            from lungus.train.cv_evidence import cross_validate_evidence

            config.run_dir.mkdir(parents=True, exist_ok=True)
            metrics, fold_metrics, records = cross_validate_evidence(config, manifest, folds, context=context,
                                                                     resume=resume, log=log, progress=progress)
            if context.is_main:
                atomic_write_text(config.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
            return CrossValidationResult(config.run_dir, metrics, fold_metrics, records)
        if config.init and FOLD_PLACEHOLDER in config.init and folds != manifest.folds():
            raise LungUSError(f"--init with {FOLD_PLACEHOLDER} starts each fold from a file made for it, so the folds "
                              f"must be the manifest's own: give it a fold column of {config.folds} folds "
                              f"(lungus split MANIFEST --folds {config.folds})", manifest.path)
        run_dir = config.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        predictions: list[dict[str, Any]] = []
        by_fold: list[list[dict[str, Any]]] = []
        fold_metrics: list[dict[str, Any]] = []
        class_names = list(scheme_classes(config.task))
        for k in range(config.folds):
            fold_settings = fold_config(config, k)
            fold_dir = fold_settings.run_dir
            held_out = [r for r, f in enumerate(folds) if f == k]
            done = fold_dir / "test" / "predictions.csv"
            if done.is_file():
                fold_predictions = read_predictions(done, class_names)
                log(f"fold {k + 1}/{config.folds}: already done")
                if progress is not None and context.is_main:
                    fold_units = config.seeds * config.epochs
                    part_progress(progress, k, config.folds, "fold")(fold_units, fold_units, "already done")
            else:
                log(f"fold {k + 1}/{config.folds}: {len(held_out)} held-out clips")
                fold_progress = None if progress is None else part_progress(progress, k, config.folds, "fold")
                # A fold not yet started has nothing to resume (seed members check their own).
                fold_resume = resume and (config.seeds > 1 or (fold_dir / "checkpoint.pt").is_file())
                result = fit_seeds(fold_settings, resume=fold_resume, test_rows=held_out, context=context, log=log,
                                   progress=fold_progress)
                fold_predictions = result.test.predictions
                if context.is_main:
                    write_classification_report(fold_dir / "test", fold_predictions, class_names,
                                                result.test.metrics)
            for p in fold_predictions:
                p["fold"] = k
            by_fold.append(fold_predictions)
        points = _fold_operating_points(run_dir, config, by_fold, context.is_main, log)
        for k, (fold_predictions, point) in enumerate(zip(by_fold, points)):
            fold_predictions = decided(fold_predictions, point)
            summary = _summarise(fold_predictions, config, n_boot=0)
            fold_metrics.append({"fold": k, **{key: summary.get(key) for key in
                                               ("auc", "accuracy", "kappa_quadratic", "n_clips", "n_patients")},
                                 "operating_point": None if point is None else point.describe()})
            predictions += fold_predictions
        for i, p in enumerate(predictions):
            p["index"] = i
        metrics = _summarise(predictions, config, n_boot=1000)
        aucs = [m["auc"] for m in fold_metrics if m.get("auc") is not None]
        metrics["fold_auc"] = aucs
        metrics["mean_fold_auc"] = float(np.mean(aucs)) if aucs else None
        metrics["folds"] = fold_metrics
        if context.is_main:
            write_classification_report(run_dir, predictions, class_names, metrics,
                                        extra_columns={"fold": [p["fold"] for p in predictions]})
            write_json(run_dir / CV_METRICS, metrics)
            atomic_write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))
            pooled = choose_on_predictions(predictions, config, f"out-of-fold predictions of its {config.folds} "
                                           f"fold models: {len(predictions)} clips of {metrics['n_patients']} "
                                           "patients", lambda line: log(f"ensemble {line}"))
            _write_fold_ensemble(run_dir, config, metrics, pooled, log)
        return CrossValidationResult(run_dir, metrics, fold_metrics, predictions)
    finally:
        shutdown_distributed(context)


def _fold_operating_points(run_dir: Path, config: TrainConfig, by_fold: list[list[dict[str, Any]]],
                           is_main: bool, log: Callable[[str], None]) -> list[OperatingPoint | None]:
    """Each fold model's operating point, chosen on the other folds' out-of-fold predictions and
    recorded in its card (RUN/fold<k>/model.pt), so the fold that scores a model never chose its
    threshold. Chosen again from the predictions on every call: a resumed run records the same."""
    from lungus.models.model_file import update_card
    from lungus.train.loop import MODEL_NAME

    points = cross_fitted_points(by_fold, config, log) if len(by_fold) > 1 else [None] * len(by_fold)
    for k, point in enumerate(points):
        path = run_dir / f"fold{k}" / MODEL_NAME
        if is_main and path.is_file():
            update_card(path, operating_point=point.to_card_field() if point is not None else {})
    return points


def _write_fold_ensemble(run_dir: Path, config: TrainConfig, metrics: dict[str, Any],
                         operating_point: OperatingPoint | None, log: Callable[[str], None]) -> None:
    """RUN/model.pt: the fold models averaged, a model for new clips at no extra training (as
    nnU-Net does). Its card carries the pooled out-of-fold metrics, the estimate for one fold
    model on unseen patients. On simulated data it matched a model trained on all patients when
    the folds trained on all theirs (val_fraction 0), and fell behind with an inner validation
    split (docs/simulated-results.md#ensembles)."""
    from lungus.models.ensemble import write_ensemble_file
    from lungus.train.loop import MODEL_NAME
    from lungus.train.seeds import member_paths
    from lungus.train.setup import plain_metrics

    members = [path for k in range(config.folds)
               for path in member_paths(fold_config(config, k))]
    if config.folds < 2 or not all(path.is_file() for path in members):
        return
    path = write_ensemble_file(run_dir / MODEL_NAME, members, name=run_dir.name,
                               validation_metrics={"cv_" + k: v for k, v in plain_metrics(metrics).items()},
                               extra={"cross_validation": {"folds": config.folds, "seeds": config.seeds}},
                               operating_point=operating_point)
    note = ""
    if config.val_fraction > 0:
        note = (f"; each fold model kept {config.val_fraction:.0%} of its patients for validation, so a model "
                "trained on all patients (without --folds) may do better")
    models = f"the {config.folds} fold models" + (f" x {config.seeds} seeds" if config.seeds > 1 else "")
    log(f"saved {path}: {models} as one ensemble, for new clips{note}")


def _summarise(predictions, config: TrainConfig, n_boot: int) -> dict[str, Any]:
    from lungus.evaluate.summaries import classification_summary

    return classification_summary(predictions, ordinal=is_ordinal(config.task), n_boot=n_boot)[0]
