"""Per-clip predictions over an evaluation set: what validation in training and `lungus
evaluate` both score.

Evaluation sets (lungus.data.pipeline.training_sets.ClipEvalSet, MaskEvalSet) expose whole clips:
``clip_frames(i)`` (uint8 (T, H, W)), ``names`` and ``patients``; a classifier's also
``targets``, a segmenter's ``clip_masks(i)`` and ``clip_fan(i)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lungus.predict.classifier import ClipClassifier
from lungus.predict.segmenter import FrameSegmenter


def classify_eval_set(classifier: ClipClassifier, model: nn.Module, dataset: Any, device: torch.device,
                      indices: Sequence[int]) -> list[dict[str, Any]]:
    """One prediction per clip ``indices``: its index, name, patient, target and class probabilities,
    and (for a classifier with an operating point) the class it decides, ``pred``."""
    predictions = []
    for i in indices:
        probabilities = classifier.predict_clip(model, dataset.clip_frames(i), device)
        prediction = {
            "index": int(i),
            "clip": dataset.names[i],
            "patient": dataset.patients[i],
            "target": dataset.targets[i].tolist(),
            "probabilities": probabilities.tolist(),
        }
        if classifier.operating_point is not None:
            prediction["pred"] = classifier.decide(probabilities)
        predictions.append(prediction)
    return predictions


def segment_eval_set(segmenter: FrameSegmenter, model: nn.Module, dataset: Any, device: torch.device,
                     indices: Sequence[int]) -> list[dict[str, Any]]:
    """One prediction per clip ``indices`` with labelled frames (mask value 255 marks a frame no
    rater annotated; a clip nobody annotated has nothing to score and is left out): predicted
    and true masks of those frames, their B-line analyses, and the few frame images a report draws."""
    from lungus.data.labels.annotation_labels import IGNORE_INDEX, labelled_frames
    from lungus.data.labels.blines import analyse_masks

    predictions = []
    for i in indices:
        frames, truth, fan = dataset.clip_frames(i), dataset.clip_masks(i), dataset.clip_fan(i)
        labelled = labelled_frames(truth, fan.mask if fan is not None else None)
        if not labelled.any():
            continue
        frames, truth = frames[labelled], np.where(truth[labelled] == IGNORE_INDEX, 0, truth[labelled])
        predicted = segmenter.predict_masks(model, frames, device, fan.mask if fan is not None else None)
        predicted_analysis, true_analysis = analyse_masks(predicted, fan), analyse_masks(truth, fan)
        # Reports draw the frames with the most B-lines and the worst count; keep just those images.
        count_error = np.abs(predicted_analysis.bline_count.astype(int) - true_analysis.bline_count.astype(int))
        worst = int(np.argmax(count_error)) if count_error.any() else None
        shown = {t for t in (true_analysis.top_frame, predicted_analysis.top_frame, worst) if t is not None}
        predictions.append({
            "index": int(i),
            "clip": dataset.names[i],
            "patient": dataset.patients[i],
            "frames": np.flatnonzero(labelled),
            "predicted": predicted,
            "truth": truth,
            "predicted_analysis": predicted_analysis,
            "true_analysis": true_analysis,
            "images": {int(t): frames[t] for t in (shown or {len(frames) // 2})},
        })
    return predictions


def segment_clip_evidence(segmenter: FrameSegmenter, model: nn.Module, dataset: Any, device: torch.device,
                          indices: Sequence[int]) -> list[dict[str, Any]]:
    """One record per clip ``indices``, no masks needed: its index, name, patient and the B-line
    evidence of the masks predicted on all its frames (``evidence``:
    lungus.data.labels.blines.MaskAnalysis.clip_evidence, what `lungus infer --segmenter`
    reports per clip)."""
    from lungus.data.labels.blines import analyse_masks

    records = []
    for i in indices:
        fan = dataset.clip_fan(i)
        fan_mask = fan.mask if fan is not None else None
        predicted = segmenter.predict_masks(model, dataset.clip_frames(i), device, fan_mask)
        records.append({"index": int(i), "clip": dataset.names[i], "patient": dataset.patients[i],
                        "evidence": analyse_masks(predicted, fan).clip_evidence()})
    return records
