"""lungus.train.classical and lungus.models.fusion: a scikit-learn classifier fitted on features,
stored as tensors, gives scikit-learn's own predict_proba in torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lungus.errors import LungUSError
from lungus.models.fusion import build_head
from lungus.train.classical import fit_classifier, head_tensors


def _features(num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 10)).astype(np.float32) * 3 + 1
    score = x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=240)
    y = (score > 1).astype(np.int64) + (score > 4 if num_classes == 3 else 0)
    return x, y


@pytest.mark.parametrize("kind, num_classes", [("logreg", 2), ("logreg", 3), ("svm", 2), ("rf", 2), ("rf", 3),
                                               ("gbm", 2), ("gbm", 3)])
def test_the_stored_classifier_gives_scikit_learns_probabilities(kind, num_classes):
    x, y = _features(num_classes)
    fitted = fit_classifier(kind, x[:200], y[:200], num_classes, seed=0)
    head, state = head_tensors(fitted)
    model = build_head(head, x.shape[1], num_classes)
    model.load_state_dict({name.removeprefix("head."): v for name, v in state.items() if name.startswith("head.")})
    standardised = (torch.from_numpy(x[200:]).double() - state["feature_mean"]) / state["feature_scale"]
    ours = model(standardised).numpy()
    np.testing.assert_allclose(ours, fitted.predict_proba(x[200:]), rtol=0, atol=1e-12)
    assert 0.05 < ours[:, 1].mean() < 0.95  # a real model, not a constant


def test_svm_is_refused_for_more_than_two_classes():
    x, y = _features(3)
    with pytest.raises(LungUSError, match="svm classifier is for two-class tasks"):
        fit_classifier("svm", x, y, 3)


def test_one_class_of_frames_is_refused():
    x, _ = _features(2)
    with pytest.raises(LungUSError, match="only class 0"):
        fit_classifier("logreg", x, np.zeros(len(x), np.int64), 2)
