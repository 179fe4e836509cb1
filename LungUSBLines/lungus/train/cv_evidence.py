"""Cross-validation of a segmenter taught by clip labels (``--label-source weak:SOURCE --folds K``).

Each fold's segmenter never sees its held-out patients; it is scored on their clips by the
clip-level B-line evidence of its predicted masks against their clip labels, and the folds'
evidence is pooled and scored as one (lungus.evaluate.clip_evidence: RUN/clip_evidence.json,
.csv and .png; RUN/cv_metrics.json adds each fold's AUC). Each fold keeps its evidence in
RUN/fold<k>/test/evidence.json, so ``--resume`` after a kill reruns only unfinished folds.
Segmenters are not averaged into one model file: each fold's RUN/fold<k>/model.pt stands alone
(train the model to use on all patients, without --folds).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lungus.atomic import atomic_write_text
from lungus.data.labels.weak_masks import parse_weak_source
from lungus.data.manifests.manifest import Manifest
from lungus.evaluate.clip_evidence import ClipEvidence, evaluate_clip_evidence
from lungus.evaluate.report import write_json
from lungus.progress import Progress, part_progress
from lungus.train.config import TrainConfig, fold_config

FOLD_EVIDENCE = "evidence.json"


def cross_validate_evidence(config: TrainConfig, manifest: Manifest, folds: list[int | None], *, context: Any,
                            resume: bool, log: Callable[[str], None], progress: Progress | None
                            ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(pooled metrics, per-fold metrics, the pooled evidence records) of a weakly supervised
    segmenter's K folds."""
    from lungus.train.seeds import fit_seeds

    source = parse_weak_source(config.label_source or "")
    records: list[dict[str, Any]] = []
    fold_metrics: list[dict[str, Any]] = []
    for k in range(config.folds):
        fold_settings = fold_config(config, k)
        done = fold_settings.run_dir / "test" / FOLD_EVIDENCE
        held_out = [r for r, f in enumerate(folds) if f == k]
        if done.is_file():
            fold_records = json.loads(done.read_text(encoding="utf-8"))
            log(f"fold {k + 1}/{config.folds}: already done")
            if progress is not None and context.is_main:
                part_progress(progress, k, config.folds, "fold")(config.epochs, config.epochs, "already done")
        else:
            log(f"fold {k + 1}/{config.folds}: {len(held_out)} held-out clips")
            fold_progress = None if progress is None else part_progress(progress, k, config.folds, "fold")
            fold_resume = resume and (fold_settings.run_dir / "checkpoint.pt").is_file()
            result = fit_seeds(fold_settings, resume=fold_resume, test_rows=held_out, context=context, log=log,
                               progress=fold_progress)
            fold_records = [] if result.test is None else result.test.predictions
            if context.is_main:
                done.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(done, json.dumps(fold_records, indent=1))
        auc = _selection_auc(fold_records)
        fold_metrics.append({"fold": k, "auc": auc, "n_clips": len(fold_records),
                             "n_patients": len({r["patient"] for r in fold_records})})
        records += [{**r, "fold": k} for r in fold_records]
    metrics, _ = evaluate_clip_evidence([ClipEvidence(r["clip"], r["evidence"]) for r in records], manifest,
                                        config.run_dir, labels=source, source="out-of-fold predictions of "
                                        f"{config.folds} fold segmenters", segmenter=config.run_dir.name)
    from lungus.train.tasks import SELECTION_EVIDENCE

    selected = metrics["statistics"][SELECTION_EVIDENCE]
    metrics["auc"], metrics["auc_ci"] = selected["auc"], selected.get("auc_ci")  # the summary line's
    metrics["folds"] = fold_metrics
    if context.is_main:
        write_json(Path(config.run_dir) / "cv_metrics.json", metrics)
    return metrics, fold_metrics, records


def _selection_auc(records: list[dict[str, Any]]) -> float | None:
    from lungus.train.tasks import evidence_result

    return evidence_result(records).metrics["auc"] if records else None
