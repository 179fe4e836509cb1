"""Reviews of a model's output that become training data (docs/review.md#review-folder).

    from lungus.review import ReviewFolder, Verdict

    reviews = ReviewFolder("REVIEWS")                      # created if missing
    reviews.record(Verdict(clip="scans/a.mp4", reviewer="tom", scheme="bline3", label="discrete",
                           model_label="none", model_probability=0.81))
    reviews.save_masks("scans/a.mp4", "tom", masks)        # 255 on frames nobody reviewed
    reviews.rows()                                         # REVIEWS/manifest.csv, one row per clip

    # then: lungus train --manifest REVIEWS/manifest.csv --label-source expert:tom

Names are imported on first use, so ``import lungus.review`` stays light.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "MASKS_FOLDER": "lungus.review.store",
    "REVIEW_HISTORY": "lungus.review.store",
    "REVIEW_MANIFEST": "lungus.review.store",
    "ReviewFolder": "lungus.review.store",
    "Verdict": "lungus.review.store",
    "export_annotate_ultrasound": "lungus.review.annotate_export",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
