"""lungus.features: backbones from model files and torchvision checkpoints, and the feature cache
keyed by clip content, backbone weights and preprocessing."""

from __future__ import annotations

import shutil

import pytest
import torch

from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
from lungus.errors import LungUSError
from lungus.features.backbones import resolve_backbone, resolve_backbones
from lungus.features.store import FeatureStore

PREPROCESSING = Preprocessing((32, 32))


def _store(tmp_path) -> FeatureStore:
    return FeatureStore(tmp_path / "features", PREPROCESSING, ClipCache(tmp_path / "cache"))


def test_features_are_computed_once_per_clip_and_backbone(tiny_models, tiny_clip_paths, tmp_path):
    backbone = resolve_backbone(str(tiny_models["classifier"]))
    store = _store(tmp_path)
    first = store.extract(tiny_clip_paths[:3], [backbone], log=lambda _: None)
    again = store.extract(tiny_clip_paths[:3], [backbone], log=lambda _: None)
    assert (first.computed, first.cached, again.computed, again.cached) == (3, 0, 0, 3)
    features, source_frames = store.get(backbone, tiny_clip_paths[0])
    assert features.shape == (8, backbone.encoder.out_channels) and source_frames.tolist() == list(range(8))


def test_a_changed_clip_or_backbone_is_computed_afresh(tiny_models, tiny_clip_paths, tmp_path):
    clip = tmp_path / "clip.mp4"
    shutil.copy(tiny_clip_paths[0], clip)
    backbone = resolve_backbone(str(tiny_models["classifier"]))
    store = _store(tmp_path)
    before = store.entry(backbone, clip)
    store.get(backbone, clip)
    shutil.copy(tiny_clip_paths[1], clip)  # same name, other content
    assert store.entry(backbone, clip) != before and store.load(backbone, clip) is None
    other = resolve_backbone(str(tiny_models["bline3"]))  # other weights
    assert store.entry(other, clip).parent != before.parent


def test_a_bad_clip_is_reported_and_the_batch_goes_on(tiny_models, tiny_clip_paths, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    report = _store(tmp_path).extract([bad, tiny_clip_paths[0]], resolve_backbones(str(tiny_models["classifier"])),
                                      log=lambda _: None)
    assert report.computed == 1 and [clip for clip, _ in report.failed] == [str(bad)]


def test_a_torchvision_backbone_takes_local_weights(tmp_path):
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), weights)
    backbone = resolve_backbone(f"mobilenet_v3_small={weights}")
    saved = torch.load(weights, weights_only=True)
    first_conv = backbone.encoder.body[0][0].weight
    assert torch.equal(first_conv, saved["features.0.0.weight"].sum(dim=1, keepdim=True))
    assert backbone.description["backbone"] == "mobilenet_v3_small"


def test_a_segmenter_or_an_unknown_name_is_no_backbone(tiny_models):
    with pytest.raises(LungUSError, match="no per-frame encoder"):
        resolve_backbone(str(tiny_models["segmenter"]))
    with pytest.raises(LungUSError, match="neither a model file nor one of"):
        resolve_backbone("resnet99")
