"""Seed ensembles: one run trained from several seeds and averaged into one model file.

A seed changes what training draws at random (initial weights, batch order, augmentation,
dropout), never the patient split: every member is trained with the same validation
patients (and, under cross-validation, the same held-out fold), so the ensemble is scored
on patients none of its members saw. On 177 real clips single runs differ by a few AUC
points from seed to seed; averaging them narrows that spread, though on COVID-BLUES two
or three seeds per fold left the pooled AUC where one seed had it (docs/real-clips.md#cv).

RUN/seed{s}/ holds member s (trained from ``seed + s``, a complete run folder of its own);
RUN/model.pt is their average (:mod:`lungus.models.ensemble`), with the ensemble's own
validation metrics when the run keeps validation patients.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lungus.progress import Progress, part_progress
from lungus.train.config import TrainConfig
from lungus.train.distributed import DistributedContext, broadcast_object
from lungus.train.loop import MODEL_NAME, TrainResult, evaluate, fit, run_context
from lungus.train.operating_points import choose_on_predictions


def member_config(config: TrainConfig, member: int) -> TrainConfig:
    """Member ``member`` of a seed ensemble: its own folder and seed, the ensemble's split and
    clip cache (prepared clips do not depend on the seed)."""
    return config.replace(out=str(config.run_dir / f"seed{member}"), seed=config.seed + member, seeds=1,
                          split_seed=config.partition_seed, cache_dir=str(config.cache_folder))


def member_paths(config: TrainConfig) -> list[Path]:
    """The model files a run's RUN/model.pt averages: itself for one seed, else its members'."""
    if config.seeds == 1:
        return [config.run_dir / MODEL_NAME]
    return [member_config(config, s).run_dir / MODEL_NAME for s in range(config.seeds)]


def fit_seeds(config: TrainConfig, *, progress: Progress | None = None,
              log: Callable[[str], None] = print, resume: bool = False, test_rows: list[int] | None = None,
              context: DistributedContext | None = None) -> TrainResult:
    """:func:`lungus.train.loop.fit` for ``config.seeds`` == 1; otherwise train the members
    one after another (with ``resume``, finished members are kept and an interrupted one
    continues) and write RUN/model.pt, their ensemble, scored on the validation and
    ``test_rows`` clips."""
    from lungus.train.checkpoint import CHECKPOINT_NAME

    if config.seeds == 1:
        return fit(config, progress=progress, log=log, resume=resume, test_rows=test_rows, context=context)
    with run_context(config, context) as (device, context):
        # One process group for all members under torchrun.
        say = log if context.is_main else (lambda _m: None)
        epochs_run = 0
        for s in range(config.seeds):
            member = member_config(config, s)
            # fit writes model.pt only once a member has finished, so it marks the member done.
            if resume and (member.run_dir / MODEL_NAME).is_file():
                say(f"seed {member.seed} ({s + 1}/{config.seeds}): already done")
                if progress is not None and context.is_main:
                    part_progress(progress, s, config.seeds, "seed")(config.epochs, config.epochs, "already done")
                continue
            say(f"seed {member.seed} ({s + 1}/{config.seeds})")
            member_progress = None if progress is None else part_progress(progress, s, config.seeds, "seed")
            result = fit(member, progress=member_progress, log=log, resume=resume and (
                member.run_dir / CHECKPOINT_NAME).is_file(), test_rows=test_rows, context=context)
            epochs_run = max(epochs_run, result.epochs_run)
            if context.is_main and result.test is not None:
                from lungus.data.labels.schemes import scheme_classes
                from lungus.evaluate.report import write_classification_report

                # Each member's own score on the held-out clips: how far single seeds spread.
                write_classification_report(member.run_dir / "test", result.test.predictions,
                                            list(scheme_classes(config.task)), result.test.metrics)
        return _score_ensemble(config, test_rows, device, context, say, epochs_run or config.epochs)


def _score_ensemble(config: TrainConfig, test_rows: list[int] | None, device: Any, context: DistributedContext,
                    say: Callable[[str], None], epochs_run: int) -> TrainResult:
    from lungus.models.ensemble import write_ensemble_file
    from lungus.train.setup import plain_metrics, prepare_run

    # The datasets of member 0 are every member's: same split, same preprocessing.
    run = prepare_run(member_config(config, 0), test_rows=test_rows, log=lambda _m: None)
    members = member_paths(config)
    model = _ensemble_in_memory(members).to(device)

    def score(dataset):
        return evaluate(model, run.task, dataset, device, context) if dataset is not None and len(dataset) else None

    val, test = score(run.val_set), score(run.test_set)
    # Under cross-validation (held-out test clips) the folds' predictions choose it (train.cv).
    point = None if val is None or test is not None else choose_on_predictions(
        val.predictions, config, f"validation split: {len(val.predictions)} clips, the {config.seeds} seeds "
        "averaged", say)
    path = None
    if context.is_main:
        path = write_ensemble_file(config.run_dir / MODEL_NAME, members, name=config.run_dir.name,
                                   validation_metrics=plain_metrics(val.metrics) if val else None,
                                   extra={"seeds": [config.seed + s for s in range(config.seeds)],
                                          "config": config.to_dict()}, operating_point=point)
        scored = f"; validation {_headline(val.metrics)}" if val else ""
        say(f"saved {path}: {config.seeds} seeds averaged{scored}")
    broadcast_object(None, context)  # every rank waits for the file
    return TrainResult(config.run_dir, path, epochs_run, epochs_run, val.metrics if val else {}, [], test)


def _ensemble_in_memory(members: list[Path]):
    from lungus.models.ensemble import ClipEnsemble
    from lungus.models.model_file import load_model_file

    return ClipEnsemble([load_model_file(path).model for path in members])


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("auc", "kappa_quadratic", "accuracy"):
        if metrics.get(key) is not None:
            return f"{key} {metrics[key]:.3f}"
    return "scored"
