import numpy as np
import pytest

from lungus.evaluate.compare import paired_auc_comparison


def _scores(y, noise, rng):
    s = 1 / (1 + np.exp(-(2 * y - 1) * 2 + rng.normal(0, noise, y.size)))
    return np.stack([1 - s, s], 1)


def test_a_much_better_model_is_significant():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    patients = rng.integers(0, 60, 300)
    result = paired_auc_comparison(y, _scores(y, 1.0, rng), _scores(y, 6.0, rng), patients, n_boot=500)
    assert result["auc_diff"] > 0.1
    assert result["auc_diff_ci"][0] > 0
    assert result["p_value"] < 0.01


def test_the_same_model_twice_is_not_significant():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    p = _scores(y, 3.0, rng)
    result = paired_auc_comparison(y, p, p.copy(), rng.integers(0, 40, 200), n_boot=200)
    assert result["auc_diff"] == 0
    assert result["p_value"] == 1.0


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same N"):
        paired_auc_comparison([0, 1], np.zeros((2, 2)), np.zeros((3, 2)), ["a", "b"])
