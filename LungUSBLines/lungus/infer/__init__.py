"""Inference: per-clip scores, per-frame curves, B-line counts and BLAS, overlays, explanations.

One engine serves `lungus infer`, the Slicer modules and cluster batch jobs:

    from lungus.infer import Analyzer, run_batch

    analyzer = Analyzer("run/model.pt", segmenter="seg/model.pt")    # models load once
    result = analyzer.analyse("scan.mp4", progress=print, cancel=stop_event)
    result.pred, result.probabilities        # the clip's class and distribution
    result.p_blines, result.bline_count      # per original frame (result.frames)
    result.clip_record()                     # its clips.csv row (docs/architecture.md#inference-outputs)

    run_batch(analyzer, BatchRequest(["clips/"], "results/"))   # clips.csv, clips.jsonl, frames.csv

Names are imported on first use, so ``import lungus.infer`` stays light.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "Analyzer": "lungus.infer.analyzer",
    "Cancelled": "lungus.infer.runners",
    "LoadedClip": "lungus.infer.analyzer",
    "analyse": "lungus.infer.analyzer",
    "ClipAnalysis": "lungus.infer.results",
    "Explanation": "lungus.infer.results",
    "SegmentationOutput": "lungus.infer.results",
    "clip_columns": "lungus.infer.results",
    "FRAME_COLUMNS": "lungus.infer.results",
    "BatchRequest": "lungus.infer.batch",
    "BatchSummary": "lungus.infer.batch",
    "InferenceInput": "lungus.infer.batch",
    "collect_inputs": "lungus.infer.batch",
    "merge_outputs": "lungus.infer.batch",
    "parse_shard": "lungus.infer.batch",
    "run_batch": "lungus.infer.batch",
    "shard_inputs": "lungus.infer.batch",
    "write_overlays": "lungus.infer.overlays",
    "overlay_frames": "lungus.infer.overlays",
    "explanation_frames": "lungus.infer.overlays",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
