"""Classical classifiers on fused frame features, fitted with scikit-learn and turned into the
tensors of lungus.models.fusion's heads (docs/frame-fusion.md#model): no pickle in a model file.

:func:`fit_classifier` standardises the features and fits one of ``logreg``, ``svm`` (RBF, Platt
scaling), ``rf`` or ``gbm``; :func:`head_tensors` reads the fitted model's parameters out as the
head's ``args`` and state; the fusion model then computes scikit-learn's ``predict_proba`` in torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lungus.errors import LungUSError
from lungus.models.fusion import CLASSIFIERS


@dataclass
class FittedClassifier:
    """A fitted scikit-learn classifier with the standardisation it was fitted after."""

    kind: str
    mean: np.ndarray
    scale: np.ndarray
    estimator: Any
    num_classes: int

    def standardise(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """scikit-learn's probabilities, all ``num_classes`` columns (a class absent from training gets 0)."""
        scores = self.estimator.predict_proba(self.standardise(features))
        full = np.zeros((len(scores), self.num_classes))
        full[:, self.estimator.classes_] = scores
        return full


def _estimator(kind: str, seed: int, balanced: bool, n_features: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    weight = "balanced" if balanced else None
    if kind == "logreg":
        return LogisticRegression(C=1.0, max_iter=2000, class_weight=weight)
    if kind == "svm":
        # gamma as scikit-learn's "scale" for standardised features (variance 1), written out so
        # the head stores the number it used; Platt scaling fitted on 5-fold decision values, one
        # SVM on all frames (ensemble=False), as scikit-learn 1.9 recommends over probability=True.
        svm = SVC(kernel="rbf", gamma=1.0 / n_features, class_weight=weight)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=5, ensemble=False)
    if kind == "rf":
        return RandomForestClassifier(n_estimators=200, min_samples_leaf=2, class_weight=weight, random_state=seed)
    return GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed)


def fit_classifier(kind: str, features: np.ndarray, targets: np.ndarray, num_classes: int, *, seed: int = 0,
                   balanced: bool = True) -> FittedClassifier:
    """Standardise (N, D) features and fit ``kind`` to (N,) class indices; classes are weighted by
    inverse frequency when ``balanced`` (gradient boosting through sample weights)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.class_weight import compute_sample_weight

    if kind not in CLASSIFIERS:
        raise LungUSError(f"classifier {kind!r} is not one of {', '.join(CLASSIFIERS)}")
    if kind == "svm" and num_classes != 2:
        raise LungUSError("the svm classifier is for two-class tasks (bline2); use logreg, rf or gbm")
    present = np.unique(targets)
    if len(present) < 2:
        raise LungUSError(f"the training frames hold only class {int(present[0]) if len(present) else '(none)'}; "
                          "a classifier needs at least two classes")
    if kind in ("logreg", "svm", "gbm") and len(present) != num_classes:
        raise LungUSError(f"the training frames hold {len(present)} of the {num_classes} classes; {kind} needs "
                          "every class (rf does without)")
    x = np.asarray(features, dtype=np.float64)
    scaler = StandardScaler().fit(x)
    estimator = _estimator(kind, seed, balanced, x.shape[1])
    standardised = scaler.transform(x)
    if kind == "gbm" and balanced:
        estimator.fit(standardised, targets, sample_weight=compute_sample_weight("balanced", targets))
    else:
        estimator.fit(standardised, targets)
    return FittedClassifier(kind, scaler.mean_.copy(), scaler.scale_.copy(), estimator, num_classes)


def _tree_arrays(trees: list[Any], outputs: int, leaf_values) -> tuple[dict[str, int], dict[str, torch.Tensor]]:
    """Padded node arrays of scikit-learn trees; ``leaf_values(index, tree) -> (nodes, outputs)``."""
    nodes = max(tree.tree_.node_count for tree in trees)
    depth = max(tree.tree_.max_depth for tree in trees)
    n = len(trees)
    feature = np.zeros((n, nodes), np.int64)
    threshold = np.zeros((n, nodes), np.float64)
    left = np.tile(np.arange(nodes), (n, 1))
    right = left.copy()
    value = np.zeros((n, nodes, outputs), np.float64)
    for i, tree in enumerate(trees):
        t = tree.tree_
        count = t.node_count
        inner = t.children_left >= 0
        feature[i, :count] = np.where(inner, t.feature, 0)
        threshold[i, :count] = np.where(inner, t.threshold, 0.0)
        left[i, :count] = np.where(inner, t.children_left, np.arange(count))
        right[i, :count] = np.where(inner, t.children_right, np.arange(count))
        value[i, :count] = leaf_values(i, tree)
    sizes = {"trees": n, "nodes": nodes, "depth": int(depth)}
    tensors = {"feature": feature, "threshold": threshold, "left": left, "right": right, "value": value}
    return sizes, {name: torch.from_numpy(array) for name, array in tensors.items()}


def head_tensors(fitted: FittedClassifier) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The fusion head's architecture ``head`` argument and its state (names under ``head.``),
    plus the standardisation (``feature_mean``, ``feature_scale``)."""
    estimator, k = fitted.estimator, fitted.num_classes
    state = {"feature_mean": torch.from_numpy(fitted.mean), "feature_scale": torch.from_numpy(fitted.scale)}
    if fitted.kind == "logreg":
        head = {"kind": "logreg"}
        state |= {"head.coef": torch.from_numpy(estimator.coef_.astype(np.float64)),
                  "head.intercept": torch.from_numpy(estimator.intercept_.astype(np.float64))}
    elif fitted.kind == "svm":
        calibrated = estimator.calibrated_classifiers_[0]
        svm, sigmoid = calibrated.estimator, calibrated.calibrators[0]
        head = {"kind": "svm", "support_vectors": int(svm.support_vectors_.shape[0])}
        state |= {"head.support_vectors": torch.from_numpy(svm.support_vectors_.astype(np.float64)),
                  "head.dual_coef": torch.from_numpy(svm.dual_coef_[0].astype(np.float64)),
                  "head.intercept": torch.tensor(float(svm.intercept_[0]), dtype=torch.float64),
                  "head.gamma": torch.tensor(float(svm.gamma), dtype=torch.float64),
                  "head.sigmoid_a": torch.tensor(float(sigmoid.a_), dtype=torch.float64),
                  "head.sigmoid_b": torch.tensor(float(sigmoid.b_), dtype=torch.float64)}
    elif fitted.kind == "rf":
        classes = estimator.classes_

        def shares(_: int, tree: Any) -> np.ndarray:
            value = tree.tree_.value[:, 0, :]
            full = np.zeros((len(value), k))
            full[:, classes] = value / value.sum(axis=1, keepdims=True)
            return full

        sizes, trees = _tree_arrays(list(estimator.estimators_), k, shares)
        head = {"kind": "rf", **sizes}
        state |= {f"head.{name}": tensor for name, tensor in trees.items()} | {
            "head.init": torch.zeros(k, dtype=torch.float64)}
    else:
        stages, outputs = estimator.estimators_.shape
        trees = [tree for stage in estimator.estimators_ for tree in stage]
        rate = estimator.learning_rate

        def scaled(index: int, tree: Any) -> np.ndarray:
            full = np.zeros((tree.tree_.node_count, outputs))
            full[:, index % outputs] = rate * tree.tree_.value[:, 0, 0]
            return full

        sizes, arrays = _tree_arrays(trees, outputs, scaled)
        head = {"kind": "gbm", **sizes}
        state |= {f"head.{name}": tensor for name, tensor in arrays.items()}
        # The initial raw score (the class prior's log-odds), read through the public API: the
        # decision value of one sample less its trees' contributions.
        sample = np.zeros((1, len(fitted.mean)))
        raw = estimator.decision_function(sample).reshape(1, -1)[0]
        for stage in estimator.estimators_:
            for column, tree in enumerate(stage):
                raw[column] -= rate * tree.predict(sample.astype(np.float32))[0]
        state["head.init"] = torch.from_numpy(raw.astype(np.float64))
    return head, state
