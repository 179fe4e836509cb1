"""Several trained clip classifiers as one: their class probabilities averaged.

A K-fold cross-validation leaves K models, each trained on a different (K-1)/K of the
patients; nnU-Net's practice is to run new cases through all of them and average, which is
steadier on unseen patients than any one of them (on 177 real clips a single run's AUC moved by
±0.03 with the seed). ``lungus train --folds K`` writes that ensemble as ``RUN/model.pt``, and
``lungus ensemble`` makes one from any model files of the same task and input.

The output is the log of the mean member probability, so ``softmax(logits)`` is exactly the
averaged probability and everything downstream (windows, flip, aggregation, export) treats the
ensemble as one classifier.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lungus.errors import LungUSError
from lungus.models.base import VideoClassifier
from lungus.models.model_file import ModelCard, load_model_file, save_model_file
from lungus.models.registry import (
    CLASSIFIER,
    Arg,
    architecture,
    build_from_architecture,
    get_spec,
    register_model,
)
from lungus.operating_point import OperatingPoint

ENSEMBLE = "ensemble"
# Card fields the members must share: they say what the ensemble predicts and how to feed it.
SHARED_CARD_FIELDS = ("task", "class_names", "preprocessing")
#: More members than any cross-validation uses; a card listing thousands is refused before any is built.
MAX_MEMBERS = 20


def _log_mean_probability(logits: list[Tensor], dim: int) -> Tensor:
    log_probabilities: list[Tensor] = []
    for member_logits in logits:  # a loop, not a comprehension: TorchScript compiles this
        log_probabilities.append(member_logits.float().log_softmax(dim=dim))
    return torch.logsumexp(torch.stack(log_probabilities), dim=0) - math.log(len(logits))


class ClipEnsemble(VideoClassifier):
    """Members' probabilities averaged; ``forward`` returns their log (valid logits)."""

    def __init__(self, members: Sequence[VideoClassifier]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.num_classes = getattr(members[0], "num_classes", None)
        self.gradcam_layout = members[0].gradcam_layout

    def forward(self, x: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        logits: list[Tensor] = []
        for member in self.members:
            logits.append(member(x, frame_mask))
        return _log_mean_probability(logits, dim=1)

    def explain(self, x: Tensor, frame_mask: Tensor | None = None) -> dict[str, Tensor]:
        """The members' explanations combined: probabilities averaged (as log), frame weights,
        class maps and spatial attention averaged where every member gives them."""
        parts = [member.explain(x, frame_mask) for member in self.members]
        result = {
            "logits": _log_mean_probability([p["logits"] for p in parts], dim=1),
            "frame_logits": _log_mean_probability([p["frame_logits"] for p in parts], dim=-1),
        }
        for key in ("frame_weights", "class_maps", "spatial_attention"):
            if all(key in p for p in parts) and len({tuple(p[key].shape) for p in parts}) == 1:
                result[key] = torch.stack([p[key].float() for p in parts]).mean(dim=0)
        return result

    def gradcam_layer(self) -> nn.Module:
        # Grad-CAM hooks one layer: the first member's, through which the ensemble's score also flows.
        return self.members[0].gradcam_layer()


def ensemble_card(member_cards: Sequence[Any], *, name: str = "", validation_metrics: dict | None = None,
                  extra: dict | None = None, paths: Sequence[os.PathLike | str] = (),
                  operating_point: OperatingPoint | None = None) -> ModelCard:
    """The card of an ensemble of models with these cards (a LungUSError naming the odd one out
    when they differ in task, classes or preprocessing). The members' operating points are not
    the ensemble's (averaging moves its scores): it gets its own, chosen on its own predictions,
    or none."""
    first = member_cards[0]
    if first.kind != CLASSIFIER:
        raise LungUSError("only clip classifiers can be ensembled", paths[0] if paths else None)
    for index, card in enumerate(member_cards[1:], start=1):
        for field in SHARED_CARD_FIELDS:
            if getattr(card, field) != getattr(first, field):
                raise LungUSError(
                    f"this model's {field} differs from the first model's; ensemble models trained "
                    "for the same task with the same input settings",
                    paths[index] if index < len(paths) else None,
                )
    sources = sorted({card.label_source for card in member_cards})
    return ModelCard(
        task=first.task,
        class_names=list(first.class_names),
        architecture={"name": ENSEMBLE, "args": {"members": [card.architecture for card in member_cards]}},
        preprocessing=dict(first.preprocessing),
        label_source=sources[0] if len(sources) == 1 else "+".join(sources),
        training_data={"members": [card.training_data for card in member_cards]},
        validation_metrics=dict(validation_metrics or {}),
        name=name,
        extra={"member_names": [card.name for card in member_cards], **(extra or {})},
        operating_point=operating_point.to_card_field() if operating_point is not None else {},
    ).stamped()


def write_ensemble_file(path: os.PathLike | str, member_paths: Sequence[os.PathLike | str], *, name: str = "",
                        validation_metrics: dict | None = None, extra: dict | None = None,
                        operating_point: OperatingPoint | None = None) -> Path:
    """Write one model file averaging the classifiers in ``member_paths`` (written atomically)."""
    if len(member_paths) < 2:
        raise LungUSError(f"an ensemble needs at least 2 model files, got {len(member_paths)}", path)
    loaded = [load_model_file(p) for p in member_paths]
    for member in loaded:
        if member.card.architecture["name"] == ENSEMBLE:
            raise LungUSError("this is already an ensemble; list its members instead", member.path)
    card = ensemble_card([m.card for m in loaded], name=name or Path(path).stem,
                         validation_metrics=validation_metrics, extra=extra, paths=member_paths,
                         operating_point=operating_point)
    model = ClipEnsemble([m.model for m in loaded])
    model.architecture_json = json.dumps(card.architecture, sort_keys=True)
    return save_model_file(path, model, card)


def check_members(members: Any) -> str | None:
    """Why ``members`` is not a list of at least two classifier architectures, or None."""
    if not isinstance(members, list) or not 2 <= len(members) <= MAX_MEMBERS:
        return f"members must list 2 to {MAX_MEMBERS} classifier architectures"
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("name"), str):
            return f"member {member!r} is not an architecture {{'name': str, 'args': dict}}"
        if member["name"] == ENSEMBLE or get_spec(member["name"]).kind != CLASSIFIER:
            return f"member {member['name']!r} is not a clip classifier"
        architecture(member["name"], **member.get("args", {}))
    return None


@register_model(
    ENSEMBLE,
    kind=CLASSIFIER,
    summary="trained clip classifiers with their probabilities averaged (lungus ensemble, or the "
    "fold models of lungus train --folds)",
    args=(Arg("members", [], "the members' architectures ({'name', 'args'} each)", list),),
    cross_check=lambda args: check_members(args["members"]),
    trainable=False,
)
def build_ensemble(num_classes: int, members: list[dict[str, Any]]) -> ClipEnsemble:
    """The registry's factory: an untrained ensemble of these member architectures."""
    return ClipEnsemble([build_from_architecture(member, num_classes) for member in members])
