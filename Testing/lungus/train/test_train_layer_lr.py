"""Layer-wise learning rates for fine-tuning (TrainConfig.layer_lr_decay, lungus.train.loop.parameter_groups)."""

from __future__ import annotations

import pytest

from lungus.errors import LungUSError
from lungus.models.registry import build_model
from lungus.train.config import TrainConfig
from lungus.train.loop import build_optimizer


def _rates(model, optimizer, key: str = "lr") -> dict[str, float]:
    """Parameter name -> its group's ``key`` (lr, or OneCycle's max_lr); each parameter must be in one group."""
    names = {id(p): name for name, p in model.named_parameters()}
    rates: dict[str, float] = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            assert names[id(parameter)] not in rates
            rates[names[id(parameter)]] = group[key]
    assert set(rates) == set(names.values())
    return rates


@pytest.mark.parametrize("schedule, key", [("cosine", "lr"), ("onecycle", "max_lr")])
def test_the_head_learns_at_lr_and_each_earlier_layer_at_decay_times_the_next(schedule, key):
    model = build_model("frame_cnn", 2, width=4, backbone="plain", context=True)
    config = TrainConfig(manifest="m.csv", out="run", lr=0.01, layer_lr_decay=0.5, schedule=schedule, epochs=1)
    rates = _rates(model, build_optimizer(model, config, 4, config.layer_lr_decay)[0], key)
    expected = {"head.weight": 0.01, "head.bias": 0.01, "attention.value.weight": 0.005,
                "encoder.stages.3.0.0.weight": 0.0025, "encoder.stages.2.1.1.bias": 0.00125,
                "encoder.stages.0.0.0.weight": 0.01 * 0.5**5}
    assert {name: pytest.approx(rates[name]) for name in expected} == expected


def test_the_simple_encoder_s_stem_is_its_first_layer():
    model = build_model("frame_cnn", 2, width=4)
    config = TrainConfig(manifest="m.csv", out="run", lr=0.01, layer_lr_decay=0.1, schedule="cosine", epochs=1)
    rates = _rates(model, build_optimizer(model, config, 4, config.layer_lr_decay)[0])
    assert rates["encoder.stem.0.weight"] == pytest.approx(0.01 * 0.1**6)  # stem, 4 stages, pooling, head
    assert rates["encoder.stages.0.0.conv1.weight"] == pytest.approx(0.01 * 0.1**5)


def test_no_decay_is_one_rate_with_weight_decay_only_on_weights():
    model = build_model("frame_cnn", 2, width=4)
    config = TrainConfig(manifest="m.csv", out="run", lr=0.01, weight_decay=0.1, schedule="cosine", epochs=1)
    optimizer, _ = build_optimizer(model, config, 4)
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(0.01, 0.1), (0.01, 0.0)]
    assert all(p.ndim > 1 for p in optimizer.param_groups[0]["params"])


def test_a_model_without_ordered_layers_is_refused_layer_rates():
    model = build_model("cnn_lstm", 2, width=4)
    config = TrainConfig(manifest="m.csv", out="run", model="cnn_lstm", layer_lr_decay=0.5)
    with pytest.raises(LungUSError, match="layer_lr_decay needs a model whose layers are ordered.*use layer_lr_decay 1"):
        build_optimizer(model, config, 4, config.layer_lr_decay)


@pytest.mark.parametrize("decay", [0, -0.5, 1.5])
def test_a_decay_outside_0_to_1_is_refused(decay):
    with pytest.raises(LungUSError, match=r"layer_lr_decay must be in \(0, 1\]"):
        TrainConfig(manifest="m.csv", out="run", layer_lr_decay=decay)
