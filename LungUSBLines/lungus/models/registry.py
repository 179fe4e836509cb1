"""Models by name: ``build_model("frame_cnn", 2, width=16)``.

Architectures register themselves where they are defined, with the ``register_model``
decorator (as torchvision's ``register_model``); this module imports none of them.

Each registry entry documents its input contract and its architecture arguments; arguments
are validated (and coerced from strings, for ``--model-arg width=16`` style command lines)
with errors that say what to do. A model file records ``{"name", "args"}`` as returned by
``architecture()`` and is rebuilt from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lungus.errors import LungUSError
from lungus.models.normalisation import IMAGENET_GRAY, KINETICS_GRAY
from lungus.models.weights import load_init_weights, load_pretrained

CLASSIFIER = "classifier"
SEGMENTER = "segmenter"
#: The most parameters (and buffer elements) a model may have: 2 GB of float32, about 16 times an
#: R(2+1)D-18 and room for a 10-fold ensemble of them. A model is counted on the meta device (no
#: memory) before it is built, so a card asking for an absurd size is refused, not allocated.
MAX_PARAMETERS = 500_000_000

VIDEO_INPUT = (
    "x: float32 (B, 1, T, H, W) grayscale frames normalised as (uint8 / 255 - mean) / std "
    "(mean/std in the card's preprocessing.normalisation); any T >= 1 and H, W >= 32. "
    "forward(x, frame_mask=None) -> logits (B, num_classes); explain(x) -> dict with "
    "logits, frame_logits (B, T, K), frame_weights (B, T) and class_maps or spatial_attention."
)
IMAGE_INPUT = (
    "x: float32 (B, 1, H, W) grayscale frames normalised as (uint8 / 255 - mean) / std; "
    "any H, W >= 32. forward(x) -> logits (B, num_classes, H, W); num_classes 6 = the class ids of docs/architecture.md#segmentation-classes."
)


# Numeric argument kinds: the Python types each accepts (bools never) and the error's wording.
_NUMBERS = {int: ((int,), "must be a whole number"), float: ((int, float), "must be a number")}


@dataclass(frozen=True)
class Arg:
    """One architecture argument: its default, type and allowed values."""

    name: str
    default: Any
    help: str
    kind: type = int
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None  # exclusive for floats, inclusive for ints

    def coerce(self, model: str, value: Any) -> Any:
        """The validated value; strings such as "16", "true" or "0.2" are converted."""

        def fail(why: str) -> LungUSError:
            return LungUSError(f"model {model}: argument {self.name}={value!r} {why}; {self.help}")

        if self.kind is bool:
            if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
                value = value.strip().lower() in ("true", "yes", "1")
            if not isinstance(value, bool):
                raise fail("must be true or false")
        elif self.kind in _NUMBERS:
            accepted, why = _NUMBERS[self.kind]
            if isinstance(value, str):
                try:
                    value = self.kind(value.strip())
                except ValueError:
                    raise fail(why) from None
            if isinstance(value, bool) or not isinstance(value, accepted):
                raise fail(why)
            value = self.kind(value)
        elif self.kind is str:
            if not isinstance(value, str):
                raise fail("must be a string")
            value = value.strip()
        elif self.kind is list:
            if not isinstance(value, list):
                raise fail("must be a list")
        if self.choices is not None and value not in self.choices:
            raise fail(f"is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise fail(f"must be >= {self.minimum}")
        if self.maximum is not None:
            too_big = value >= self.maximum if self.kind is float else value > self.maximum
            if too_big:
                raise fail(f"must be {'<' if self.kind is float else '<='} {self.maximum}")
        return value


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry."""

    name: str
    kind: str  # CLASSIFIER or SEGMENTER
    summary: str
    input_contract: str
    args: tuple[Arg, ...]
    factory: Callable[..., nn.Module]
    recommended_input: dict  # e.g. {"size": [96, 96], "frames": 16}
    pretrained_weights: Callable[[dict], str | None] | None = None  # args -> weights name or None
    cross_check: Callable[[dict], str | None] | None = None  # args -> problem or None
    trainable: bool = True  # False: assembled from trained model files (an ensemble), not trained by name

    def check_args(self, arch_args: dict[str, Any]) -> dict[str, Any]:
        """All arguments, defaults filled in, validated."""
        known = {arg.name: arg for arg in self.args}
        unknown = sorted(set(arch_args) - set(known))
        if unknown:
            raise LungUSError(
                f"model {self.name} has no argument {unknown[0]!r}; its arguments are "
                f"{', '.join(known) or '(none)'} (see lungus.models.describe_model({self.name!r}))"
            )
        values = {
            name: arg.coerce(self.name, arch_args.get(name, arg.default)) for name, arg in known.items()
        }
        if self.cross_check is not None:
            problem = self.cross_check(values)
            if problem:
                raise LungUSError(f"model {self.name}: {problem}")
        return values

    def normalisation(self, pretrained: bool, args: dict[str, Any]) -> dict[str, float]:
        """The input normalisation to train with (Kinetics statistics for Kinetics-pretrained video ResNets)."""
        if pretrained and self.pretrained_weights is not None:
            weights = self.pretrained_weights(args) or ""
            if "KINETICS" in weights:
                return dict(KINETICS_GRAY)
        return dict(IMAGENET_GRAY)

    def describe(self) -> str:
        lines = [f"{self.name} ({self.kind}): {self.summary}", f"  input: {self.input_contract}"]
        lines.append(f"  recommended input: {self.recommended_input}")
        for arg in self.args:
            allowed = f" one of {'/'.join(map(str, arg.choices))}" if arg.choices else ""
            lines.append(f"  {arg.name} (default {arg.default!r}{allowed}): {arg.help}")
        return "\n".join(lines)


#: Every model lungus builds, by name, in registration order (filled by ``register_model``).
MODEL_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    kind: str,
    summary: str,
    args: tuple[Arg, ...] = (),
    recommended_input: dict | None = None,
    pretrained_weights: Callable[[dict], str | None] | None = None,
    cross_check: Callable[[dict], str | None] | None = None,
    trainable: bool = True,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated factory (``factory(num_classes, **args) -> nn.Module``) under ``name``.

    Used where an architecture is defined, as torchvision's ``register_model``; importing
    :mod:`lungus.models` imports those modules, so the registry itself imports none of them.
    The input contract follows ``kind`` (VIDEO_INPUT for classifiers, IMAGE_INPUT for segmenters).
    """
    if kind not in (CLASSIFIER, SEGMENTER):
        raise ValueError(f"model {name!r}: kind must be {CLASSIFIER!r} or {SEGMENTER!r}, got {kind!r}")

    def register(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODEL_REGISTRY:
            owner = MODEL_REGISTRY[name].factory
            raise ValueError(
                f"a model named {name!r} is already registered (by {owner.__module__}.{owner.__qualname__}); "
                "register yours under another name"
            )
        MODEL_REGISTRY[name] = ModelSpec(
            name=name,
            kind=kind,
            summary=summary,
            input_contract=VIDEO_INPUT if kind == CLASSIFIER else IMAGE_INPUT,
            args=tuple(args),
            factory=factory,
            recommended_input=dict(recommended_input or {}),
            pretrained_weights=pretrained_weights,
            cross_check=cross_check,
            trainable=trainable,
        )
        return factory

    return register


def available_models(kind: str | None = None) -> list[str]:
    """Names of the models one can train, optionally only ``"classifier"`` or ``"segmenter"`` ones."""
    return [name for name, spec in MODEL_REGISTRY.items()
            if spec.trainable and (kind is None or spec.kind == kind)]


def get_spec(name: str) -> ModelSpec:
    try:
        return MODEL_REGISTRY[name]
    except (KeyError, TypeError):
        raise LungUSError(f"unknown model {name!r}; choose one of {', '.join(MODEL_REGISTRY)}") from None


def describe_model(name: str) -> str:
    """Human-readable documentation of a model: summary, input contract, arguments."""
    return get_spec(name).describe()


def _check_num_classes(name: str, num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise LungUSError(f"model {name}: num_classes must be a positive whole number, got {num_classes!r}")
    return num_classes


def architecture(name: str, **arch_args: Any) -> dict[str, Any]:
    """The JSON-able ``{"name", "args"}`` a model card records: arguments validated, defaults filled in."""
    return {"name": name, "args": get_spec(name).check_args(arch_args)}


def check_model_size(spec: ModelSpec, num_classes: int, args: dict[str, Any]) -> None:
    """Refuse a model with more than MAX_PARAMETERS parameters, counted without allocating them."""
    with torch.device("meta"):
        probe = spec.factory(num_classes, **args)
    size = sum(t.numel() for t in (*probe.parameters(), *probe.buffers()))
    if size > MAX_PARAMETERS:
        raise LungUSError(
            f"model {spec.name} with {json.dumps(args)[:200]} would have {size:,} parameters, more than the "
            f"{MAX_PARAMETERS:,} lungus builds; check its arguments (a damaged or edited model card?)"
        )


def build_model(
    name: str,
    num_classes: int,
    *,
    pretrained: bool = False,
    init: str | os.PathLike | None = None,
    **arch_args: Any,
) -> nn.Module:
    """Build a registered model.

    ``pretrained`` loads torchvision's weights (Kinetics-400 for video ResNets at width 64,
    ImageNet for torchvision 2-D backbones) from TORCH_HOME or the internet; ``init`` loads a
    local model file or state_dict (tensors matched by name and shape). Both fail with a
    one-line LungUSError when they can't work. The model comes back in training mode, with
    ``architecture_json`` (the card's ``architecture`` as JSON) set on it.
    """
    spec = get_spec(name)
    num_classes = _check_num_classes(name, num_classes)
    args = spec.check_args(arch_args)
    if pretrained and (spec.pretrained_weights is None or spec.pretrained_weights(args) is None):
        raise LungUSError(
            f"model {name} with these arguments has no torchvision pretrained weights "
            f"({'use width=64' if 'width' in args and spec.name.startswith('r') else 'pick a torchvision backbone'}"
            " or drop --pretrained)"
        )
    if pretrained and init is not None:
        raise LungUSError("pass either --pretrained or --init PATH, not both")
    check_model_size(spec, num_classes, args)
    model = spec.factory(num_classes, **args)
    model.architecture_json = json.dumps({"name": name, "args": args}, sort_keys=True)
    if pretrained:
        load_pretrained(model)
    elif init is not None:
        load_init_weights(model, init)
    return model


def build_from_architecture(arch: Any, num_classes: int) -> nn.Module:
    """Rebuild a model from a card's ``architecture`` ({"name", "args"}), without any starting weights."""
    if (
        not isinstance(arch, dict)
        or not isinstance(arch.get("name"), str)
        or not isinstance(arch.get("args", {}), dict)
    ):
        raise LungUSError(f"architecture must be {{'name': str, 'args': dict}}, got {arch!r}")
    return build_model(arch["name"], num_classes, **arch.get("args", {}))


def parse_arch_args(items: list[str]) -> dict[str, str]:
    """``["width=16", "pooling=max"]`` (command-line ``--model-arg`` values) -> dict; values are
    coerced later by the model's own argument types."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LungUSError(f"model argument {item!r} must look like NAME=VALUE, e.g. width=16")
        parsed[key.strip()] = value
    return parsed
