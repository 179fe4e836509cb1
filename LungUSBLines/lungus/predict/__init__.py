"""Predictions from a model, as its card says: the layer below training, evaluation and inference.

- :mod:`~lungus.predict.windows`: a clip classifier's sliding windows and their aggregation;
- :mod:`~lungus.predict.masks`: a segmenter's logits to class masks (label classes, logit
  offsets, small B-line regions dropped);
- :mod:`~lungus.predict.classifier` / :mod:`~lungus.predict.segmenter`: the predictors;
- :mod:`~lungus.predict.card`: :func:`predictor_from_card`, the one way from a model card to its predictor;
- :mod:`~lungus.predict.eval_sets`: per-clip predictions over an evaluation set.

Training (:mod:`lungus.train.tasks`) adds losses and metrics to the predictors; evaluation and
inference build theirs with :func:`predictor_from_card`, so evaluation scores what inference runs.

Names are imported on first use, so ``import lungus.predict`` does not load torch.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "predictor_from_card": "card",
    "ClipClassifier": "classifier",
    "FrameSegmenter": "segmenter",
    "classify_eval_set": "eval_sets",
    "segment_eval_set": "eval_sets",
    "CONFLUENT_LOGIT_OFFSET": "masks",
    "MIN_BLINE_SHARE": "masks",
    "class_argmax": "masks",
    "drop_small_blines": "masks",
    "masks_from_logits": "masks",
    "aggregate_windows": "windows",
    "clip_windows": "windows",
    "window_starts": "windows",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
