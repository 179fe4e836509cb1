"""Simulated raters: shapes, determinism, crowd structure, expert disagreement."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import CROWD_COLUMNS
from lungus.sim.raters import ExpertSpec, RaterConfig, simulate_raters

CLASSES = ("none", "discrete", "confluent")


def _truth(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES, size=n, p=[0.4, 0.4, 0.2]).tolist()
    return truth, [f"p{i // 5:03d}" for i in range(n)]


def test_counts_match_opinions_and_config():
    truth, patients = _truth(80)
    config = RaterConfig(n_crowd=30, opinions_per_clip=6)
    result = simulate_raters(truth, patients, seed=1, config=config)
    assert result.crowd_counts.shape == (80, 3)
    assert (result.crowd_counts.sum(axis=1) == 6).all()
    tally = np.zeros((80, 3), dtype=int)
    for clip, _, label in result.opinions:
        tally[clip, CLASSES.index(label)] += 1
    np.testing.assert_array_equal(tally, result.crowd_counts)
    per_clip_raters = {}
    for clip, rater, _ in result.opinions:
        per_clip_raters.setdefault(clip, []).append(rater)
    assert all(len(set(r)) == len(r) for r in per_clip_raters.values())  # distinct raters per clip


def test_same_seed_same_result_other_seed_differs():
    truth, patients = _truth(50)
    a = simulate_raters(truth, patients, seed=7)
    b = simulate_raters(truth, patients, seed=7)
    c = simulate_raters(truth, patients, seed=8)
    assert a.opinions == b.opinions and a.experts == b.experts
    assert a.opinions != c.opinions


def test_workload_is_heavy_tailed_and_spammers_present():
    truth, patients = _truth(400)
    result = simulate_raters(truth, patients, seed=2, config=RaterConfig(n_crowd=60, spammer_share=1 / 3))
    loads = np.sort(np.array(list(result.rater_n_labels.values())))[::-1]
    assert loads[:6].sum() > loads[-30:].sum()  # the busiest 10 % of raters outwork the bottom half
    kinds = list(result.rater_kind.values())
    assert kinds.count("spammer-random") + kinds.count("spammer-constant") == 20
    assert kinds.count("spammer-constant") >= 1 and kinds.count("spammer-random") >= 1
    spam_accuracy = [result.rater_accuracy[r] for r, k in result.rater_kind.items() if k == "spammer-random"]
    crowd_accuracy = [result.rater_accuracy[r] for r, k in result.rater_kind.items() if k == "crowd"]
    assert np.nanmean(spam_accuracy) < 0.45 < np.nanmean(crowd_accuracy)


def test_crowd_errors_fall_mostly_on_adjacent_classes():
    truth, patients = _truth(600)
    result = simulate_raters(truth, patients, seed=3, config=RaterConfig(spammer_share=0.0))
    given = np.array([CLASSES.index(label) for _, _, label in result.opinions])
    true = result.truth[[clip for clip, _, _ in result.opinions]]
    wrong = given != true
    assert (np.abs(given - true)[wrong] == 1).mean() > 0.9


def test_experts_are_better_than_the_crowd_but_disagree_with_each_other():
    truth, patients = _truth(500)
    result = simulate_raters(truth, patients, seed=4)
    assert set(result.experts) == {"a", "b", "c", "noisy"}
    crowd = np.nanmean([result.rater_accuracy[r] for r, k in result.rater_kind.items() if k == "crowd"])
    for name in ("a", "b", "c"):
        assert result.expert_accuracy[name] > crowd
    assert result.expert_accuracy["noisy"] < min(result.expert_accuracy[n] for n in ("a", "b", "c")) - 0.1
    labels = {n: np.array(v) for n, v in result.experts.items()}
    assert np.mean(labels["a"] == labels["b"]) < 0.9  # systematic leans make them disagree
    # expert a over-calls discrete, b over-calls none
    assert np.mean(labels["a"] == "discrete") > np.mean(labels["b"] == "discrete")
    assert np.mean(labels["b"] == "none") > np.mean(labels["a"] == "none")


def test_manifest_columns_and_opinion_rows():
    truth, patients = _truth(10)
    result = simulate_raters(truth, patients, seed=5, config=RaterConfig(noisy_expert_accuracy=None))
    columns = result.manifest_columns()
    assert list(columns)[:3] == list(CROWD_COLUMNS)
    assert set(columns) == set(CROWD_COLUMNS) | {"expert_a", "expert_b", "expert_c"}
    assert all(len(values) == 10 for values in columns.values())
    rows = result.opinion_rows([f"clips/c{i}.npy" for i in range(10)])
    assert rows[0][0] == "clips/c0.npy" and len(rows) == len(result.opinions)


@pytest.mark.parametrize(
    "config, message",
    [
        (RaterConfig(n_crowd=3, opinions_per_clip=5), "opinions_per_clip"),
        (RaterConfig(spammer_share=1.0), "spammer_share"),
        (RaterConfig(experts=(ExpertSpec("a"), ExpertSpec("a"))), "unique"),
        (RaterConfig(experts=(ExpertSpec("x y"),)), "column name"),
    ],
)
def test_bad_config_is_rejected_with_the_parameter_named(config, message):
    with pytest.raises(ValueError, match=message):
        simulate_raters(["none"] * 4, ["p"] * 4, seed=0, config=config)


def test_unknown_truth_label_is_rejected():
    with pytest.raises(ValueError, match="bline3"):
        simulate_raters(["none", "lots"], ["p", "p"], seed=0)
