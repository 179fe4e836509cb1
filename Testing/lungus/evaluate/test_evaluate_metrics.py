import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    roc_auc_score,
)

from lungus.evaluate.metrics import classification_metrics, spearman


def _predictions(n_classes: int, n: int = 240, seed: int = 3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    patients = rng.integers(0, 40, n)
    return y, probabilities, patients


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_point_metrics_equal_scikit_learn(n_classes):
    y, p, patients = _predictions(n_classes)
    pred = p.argmax(axis=1)
    m = classification_metrics(y, p, patients, ordinal=True, n_boot=0)
    expected_auc = roc_auc_score(y, p[:, 1]) if n_classes == 2 else roc_auc_score(y, p, multi_class="ovr")
    assert m["auc"] == pytest.approx(expected_auc)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert m["kappa_quadratic"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))


def test_spearman_equals_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 5, 60), rng.integers(0, 4, 60)  # many ties, as counts and 0-3 scores have
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_spearman_of_a_constant_is_undefined():
    assert spearman(np.zeros(5), np.arange(5)) is None


def test_auc_counts_ties_as_half():
    y = np.array([0, 1, 0, 1])
    scores = np.array([0.5, 0.5, 0.2, 0.9])
    m = classification_metrics(y, np.stack([1 - scores, scores], 1), ["a", "b", "c", "d"], n_boot=0)
    assert m["auc"] == pytest.approx(roc_auc_score(y, scores))


def test_ci_brackets_the_point_estimate_and_reports_counts():
    y, p, patients = _predictions(2)
    m = classification_metrics(y, p, patients, n_boot=300)
    for name in ("auc", "accuracy", "sensitivity", "specificity", "kappa", "ece"):
        low, high = m[f"{name}_ci"]
        assert low <= m[name] <= high, name
        assert high > low, name
    assert m["n_clips"] == len(y)
    assert m["n_patients"] == len(set(patients))


def test_bootstrap_resamples_patients_not_clips():
    # Two patients, each with many identical clips: a clip bootstrap would give a narrow CI,
    # a patient bootstrap swings between the two patients' accuracies.
    y = np.array([1] * 50 + [1] * 50)
    scores = np.array([0.9] * 50 + [0.1] * 50)
    m = classification_metrics(y, np.stack([1 - scores, scores], 1), ["p1"] * 50 + ["p2"] * 50, n_boot=400)
    assert m["accuracy_ci"] == pytest.approx([0.0, 1.0])


def test_perfectly_calibrated_predictions_have_low_ece():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    y = (rng.random(20000) < confidence).astype(int)
    m = classification_metrics(y, np.stack([1 - confidence, confidence], 1), np.arange(20000), n_boot=0)
    assert m["ece"] < 0.02
    overconfident = np.full_like(confidence, 0.99)
    m_bad = classification_metrics(y, np.stack([1 - overconfident, overconfident], 1), np.arange(20000), n_boot=0)
    assert m_bad["ece"] > 0.15


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="one patient per clip"):
        classification_metrics([0, 1], np.array([[0.5, 0.5], [0.2, 0.8]]), ["a"])
