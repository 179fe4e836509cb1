"""Backbones: the trained frame encoders whose features a fusion model fuses (docs/frame-fusion.md#backbones).

A backbone is named on the command line by one of:

- ``PATH`` to a lungus model file of a frame classifier (frame_cnn, cnn_lstm): its per-frame
  encoder, with the normalisation its card records;
- ``resnet18`` (or resnet34, mobilenet_v3_small): torchvision's ImageNet weights, downloaded
  once into TORCH_HOME (needs internet);
- ``resnet18=PATH``: the same backbone with weights from a local file (torchvision's own
  checkpoint, or a lungus model file with that backbone), as ``--init PATH`` does for training.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from lungus.errors import LungUSError
from lungus.models.frame_encoder import TORCHVISION_BACKBONES
from lungus.models.model_file import load_model_file, weights_digest
from lungus.models.normalisation import IMAGENET_GRAY

#: Architectures whose ``encoder`` embeds each frame alone (frame_cnn without context channels).
FRAME_ENCODER_MODELS = ("frame_cnn", "cnn_lstm")


@dataclass
class Backbone:
    """A frame encoder ready to embed frames: ``description`` is its entry in the fusion card's
    ``backbones``; ``digest`` names its weights and description in the feature cache."""

    source: str
    encoder: nn.Module
    description: dict[str, Any]

    @property
    def name(self) -> str:
        return self.description["name"]

    @property
    def digest(self) -> str:
        summary = json.dumps({k: v for k, v in self.description.items() if k != "name"}, sort_keys=True)
        return hashlib.sha256((weights_digest(self.encoder.state_dict()) + summary).encode()).hexdigest()


def _describe(name: str, args: dict[str, Any], normalisation: dict[str, float]) -> dict[str, Any]:
    return {"name": name, "backbone": args["backbone"], "width": args["width"], "blocks": args["blocks"],
            "norm": args["norm"], "normalisation": dict(normalisation)}


def _from_model_file(path: Path) -> Backbone:
    loaded = load_model_file(path)
    architecture, card = loaded.card.architecture, loaded.card
    if architecture["name"] not in FRAME_ENCODER_MODELS:
        raise LungUSError(f"a {architecture['name']} model has no per-frame encoder to take features from; use a "
                          f"{' or '.join(FRAME_ENCODER_MODELS)} model, or a torchvision backbone", path)
    if architecture["args"].get("context"):
        raise LungUSError("this frame_cnn sees each frame with its window's context channels, so its features "
                          "are not a single frame's; train one with context false", path)
    name = card.name or path.parent.name or path.stem
    description = _describe(name, architecture["args"], card.preprocessing["normalisation"])
    return Backbone(str(path), loaded.model.encoder.eval(), description)


def _torchvision(name: str, weights: str | None) -> Backbone:
    from lungus.models.registry import build_model

    # A frame_cnn with this backbone loads torchvision's (or a local) checkpoint into its encoder
    # by the torchvision key map; its head is never used.
    model = build_model("frame_cnn", 2, backbone=name, pretrained=weights is None, init=weights)
    label = name if weights is None else f"{name}={Path(weights).name}"
    return Backbone(f"{name}={weights}" if weights else name, model.encoder.eval(),
                    _describe(label, json.loads(model.architecture_json)["args"], IMAGENET_GRAY))


def resolve_backbone(spec: str) -> Backbone:
    """The backbone ``spec`` names (module docstring); a LungUSError saying what to pass when it names none."""
    spec = spec.strip()
    name, sep, weights = spec.partition("=")
    if name in TORCHVISION_BACKBONES:
        return _torchvision(name, weights if sep else None)
    path = Path(os.path.expanduser(spec))
    if path.is_file():
        return _from_model_file(path)
    raise LungUSError(f"backbone {spec!r} is neither a model file nor one of {', '.join(TORCHVISION_BACKBONES)} "
                      "(optionally NAME=WEIGHTS_FILE)")


def resolve_backbones(specs: str | list[str]) -> list[Backbone]:
    """Backbones from a comma-separated text or a list; two with the same name are told apart by number."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise LungUSError("name at least one backbone (a model file, or resnet18 / resnet18=WEIGHTS)")
    backbones = [resolve_backbone(spec) for spec in specs]
    seen: dict[str, int] = {}
    for backbone in backbones:
        count = seen.get(backbone.name, 0)
        seen[backbone.name] = count + 1
        if count:
            backbone.description["name"] = f"{backbone.name}#{count + 1}"
    return backbones
