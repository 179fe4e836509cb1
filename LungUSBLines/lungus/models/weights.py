"""Starting weights: torchvision's pretrained weights (``--pretrained``) or a local file (``--init PATH``).

Nothing here downloads unless asked; a failed download says how to get the weights offline.
Three-channel first convolutions are adapted to our one-channel input by summing over RGB:
for a grayscale frame copied into R, G and B that gives the same response as the RGB filters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from lungus.errors import LungUSError

TORCHVISION_WEIGHTS = {
    "r2plus1d": "R2Plus1D_18_Weights.KINETICS400_V1",
    "r3d": "R3D_18_Weights.KINETICS400_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet34": "ResNet34_Weights.IMAGENET1K_V1",
    "mobilenet_v3_small": "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
}

#: A pretrained encoder's model file (`lungus pretrain`) says so in its card: ``extra[PRETRAINING]`` holds
#: the method, the clips and the loss curve, and under ``"modules"`` the top-level modules that learned
#: (the rest, the classifier head, kept their random start). ``--init`` copies only those.
PRETRAINING = "pretraining"

#: What a model with a torchvision part says about it: the weights enum (``Class.MEMBER``) and a
#: map from its state_dict keys to torchvision's (None for keys of its own, such as the head).
TorchvisionWeights = tuple[str, Callable[[str], str | None]]


@dataclass
class InitReport:
    """Which of the model's tensors were copied from the source, and which kept their fresh values."""

    source: str
    loaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"initialised {len(self.loaded)} of {len(self.loaded) + len(self.kept)} tensors from {self.source}"


def _torchvision_weights(model: nn.Module) -> TorchvisionWeights | None:
    # Each architecture knows its own torchvision part (its ``torchvision_weights()`` method), so
    # this module needs none of them: the models import it, not the other way round.
    describe = getattr(model, "torchvision_weights", None)
    return describe() if callable(describe) else None


def torchvision_key_map(model: nn.Module) -> Callable[[str], str | None] | None:
    """Our state_dict key -> torchvision's key for the same tensor, for models with a torchvision part."""
    found = _torchvision_weights(model)
    return found[1] if found is not None else None


def torchvision_weights_name(model: nn.Module) -> str | None:
    """The torchvision weights enum (``Class.MEMBER``) that ``--pretrained`` loads into this model."""
    found = _torchvision_weights(model)
    return found[0] if found is not None else None


def _adapt(value: Tensor, target: Tensor) -> Tensor | None:
    """``value`` shaped like ``target``: as is, or a 3-channel filter summed to 1 channel; None if it can't be."""
    if value.shape == target.shape:
        return value
    if (
        value.dim() >= 3
        and value.shape[1] == 3
        and target.shape[1] == 1
        and value.shape[2:] == target.shape[2:]
    ):
        if value.shape[0] == target.shape[0]:
            return value.sum(dim=1, keepdim=True)
    return None


def copy_matching(
    model: nn.Module,
    source: dict[str, Tensor],
    source_name: str,
    key_map: Callable[[str], str | None] | None = None,
) -> InitReport:
    """Copy every source tensor whose name (through ``key_map``) and shape fit one of the model's."""
    report = InitReport(source=source_name)
    target = model.state_dict()
    updated = {}
    for key, value in target.items():
        source_key = key if key_map is None else key_map(key)
        candidate = source.get(source_key) if source_key is not None else None
        adapted = _adapt(candidate, value) if isinstance(candidate, Tensor) else None
        if adapted is None:
            report.kept.append(key)
        else:
            updated[key] = adapted.to(value.dtype)
            report.loaded.append(key)
    model.load_state_dict(updated, strict=False)
    return report


def download_torchvision_weights(weights_name: str) -> dict[str, Tensor]:
    """torchvision weights by enum name, from the TORCH_HOME cache or downloaded; a clear error if neither."""
    import torchvision

    weights = torchvision.models.get_weight(weights_name)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # URLError, HTTPError, socket errors, hash mismatch: all mean "not available"
        raise LungUSError(
            f"could not download torchvision weights {weights_name} ({type(error).__name__}: {error}) "
            f"(no internet?); download them on a machine with internet into TORCH_HOME (here {cache}) "
            "or pass --init PATH",
            path=weights.url,
        ) from None


def load_pretrained(model: nn.Module) -> InitReport:
    """Load the torchvision weights that fit this model (its encoder or, for video ResNets, all but the head)."""
    weights_name = torchvision_weights_name(model)
    key_map = torchvision_key_map(model)
    if weights_name is None or key_map is None:
        raise LungUSError(
            f"{type(model).__name__} with these arguments has no torchvision pretrained weights; "
            "use a torchvision backbone (see `available_models()`) or drop --pretrained"
        )
    report = copy_matching(model, download_torchvision_weights(weights_name), weights_name, key_map)
    expected = [key for key in model.state_dict() if key_map(key) is not None]
    missing = sorted(set(expected) - set(report.loaded))
    if missing:
        raise LungUSError(
            f"torchvision weights {weights_name} do not fit this model ({len(missing)} tensors differ, "
            f"e.g. {missing[0]}); use the torchvision width or drop --pretrained"
        )
    return report


def _state_dict_from(obj: object) -> dict[str, Tensor] | None:
    """The tensor dict inside a model file, a training checkpoint or a bare state_dict; None if none."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
        if tensors:
            # Weights saved from a DistributedDataParallel wrapper carry a "module." prefix.
            return {k.removeprefix("module."): v for k, v in tensors.items()}
    return None


def load_init_weights(model: nn.Module, path: str | os.PathLike) -> InitReport:
    """Initialise from a local file: a lungus model file, a checkpoint or a state_dict (ours or torchvision's).

    Tensors are matched by name and shape, so a head with another class count keeps its fresh
    values; a file where nothing matches is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise LungUSError("no such weights file; check the --init path", path=path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise LungUSError(
            f"not a weights file that loads safely ({type(error).__name__}); --init takes a lungus model file "
            "or a PyTorch state_dict saved with torch.save",
            path=path,
        ) from None
    state = _state_dict_from(obj)
    if state is None:
        raise LungUSError(
            "holds no tensors; --init takes a lungus model file or a PyTorch state_dict", path=path
        )
    pretrained = pretrained_modules(obj)
    if pretrained is not None:
        return _load_pretrained_encoder(model, state, pretrained, path)
    report = copy_matching(model, state, str(path))
    key_map = torchvision_key_map(model)
    if not report.loaded and key_map is not None:
        report = copy_matching(model, state, str(path), key_map)  # a torchvision checkpoint, by its names
    if not report.loaded:
        raise LungUSError(
            f"none of its {len(state)} tensors fit {type(model).__name__} (names or shapes differ); "
            "pass weights saved from the same architecture",
            path=path,
        )
    return report


def pretrained_modules(model_file: object) -> list[str] | None:
    """The modules a pretrained encoder's model file says learned (its card's ``extra[PRETRAINING]["modules"]``);
    None for any other file."""
    card = model_file.get("card") if isinstance(model_file, dict) else None
    extra = card.get("extra") if isinstance(card, dict) else None
    pretraining = extra.get(PRETRAINING) if isinstance(extra, dict) else None
    modules = pretraining.get("modules") if isinstance(pretraining, dict) else None
    return [str(m) for m in modules] if isinstance(modules, list) else None


def _load_pretrained_encoder(model: nn.Module, state: dict[str, Tensor], modules: list[str], path: Path) -> InitReport:
    """Copy a pretrained encoder's learned tensors, all of them: one that does not fit means the
    fine-tuning network is not the pretrained one, and a partly copied encoder would hide that."""
    learned = {key: value for key, value in state.items() if key.split(".", 1)[0] in modules}
    report = copy_matching(model, learned, str(path))
    unfit = sorted(set(learned) - set(report.loaded))
    if unfit or not learned:
        raise LungUSError(
            f"{len(unfit)} of the pretrained encoder's {len(learned)} tensors do not fit {type(model).__name__} "
            f"(e.g. {unfit[0] if unfit else 'none learned'}); fine-tune with the model and model_args it was "
            "pretrained with (its card's architecture)",
            path=path,
        )
    return report
