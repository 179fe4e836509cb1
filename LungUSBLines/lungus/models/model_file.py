"""Model files (docs/architecture.md#model-file): one ``.pt`` holding a plain dict that
``torch.load(weights_only=True)`` reads: ``{"format_version", "state_dict", "card"}``.

The card says what the model does and how to feed it; the model is rebuilt from the
card's ``architecture`` through the registry, so no Python object is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lungus.atomic import atomic_path
from lungus.clip_rules import clip_rule_problem
from lungus.data.labels.schemes import LABEL_SCHEMES, SEG_CLASSES
from lungus.data.labels.tasks import SEG_TASK, TASKS
from lungus.errors import LungUSError, error_detail
from lungus.models.normalisation import check_normalisation
from lungus.models.registry import CLASSIFIER, SEGMENTER, architecture, build_from_architecture, get_spec
from lungus.models.weights import PRETRAINING
from lungus.operating_point import OperatingPoint
from lungus.timestamps import utc_now

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Input sizes a card may ask for, checked before any input is allocated: frames are resized to
# ``size`` and windows of ``frames`` of them batched, so an absurd card would otherwise ask for
# gigabytes. The limits are far above any ultrasound model (96-256 pixels, 16-32 frames).
MAX_FRAME_SIDE = 2048
MAX_WINDOW_FRAMES = 256
MAX_WINDOW_PIXELS = 1 << 25  # frames x height x width: 128 MB of float32 per window
# The label sources lungus train writes; others are allowed (a card describes, it does not restrict).
KNOWN_LABEL_SOURCES = (
    "crowd-soft",
    "crowd-majority",
    "crowd-ds",
    "expert:NAME",
    "expert-majority",
    "truth",
    "bline2",
    "bline3",
    "lus4",
    "annotations",
    "annotations-staple",
    "annotations:NAME",
)


def task_class_names(task: str) -> list[str]:
    """The class names a task's model predicts, in output order."""
    if task == SEG_TASK:
        return [c.name for c in SEG_CLASSES]
    if task in LABEL_SCHEMES:
        return list(LABEL_SCHEMES[task])
    raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")


def software_versions() -> dict[str, str]:
    """Versions of the software a model was made with, for its card."""
    import numpy
    import torchvision

    import lungus

    return {
        "lungus": lungus.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


class UnverifiedModelWarning(UserWarning):
    """A model file from before weights digests: it loads, but damage to it cannot be detected."""


def weights_digest(state: Mapping[str, Tensor]) -> str:
    """SHA-256 of a state dict: for each tensor in name order, a JSON line with its name, dtype and
    shape, then its bytes (so the same weights give the same digest on any device or platform)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(json.dumps([name, str(tensor.dtype), list(state[name].shape)]).encode() + b"\n")
        digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def check_digest(recorded: Any, actual: str, path: os.PathLike | str) -> None:
    """Refuse a file whose weights do not match the digest recorded in it; warn when it records none.

    Files saved before digests existed still load (with an UnverifiedModelWarning naming the file):
    refusing them would strand every model trained so far, and stripping the digest buys an attacker
    nothing that recomputing it would not. The digest detects damage and edits to the weights, not a
    forger who rewrites both; for that, compare the file's SHA-256 (in every result) with a trusted one.
    """
    if not recorded:
        warnings.warn(
            UnverifiedModelWarning(
                f"{os.fspath(path)}: this model file records no weights digest (saved by an older lungus), "
                "so damage to it cannot be detected; save or export it again with this lungus"
            ),
            stacklevel=3,
        )
    elif recorded != actual:
        raise LungUSError(
            "weights do not match the card's digest: the file was changed or damaged", path=path
        )


def _jsonable(name: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"card field {name} must be JSON-serialisable ({error})") from None


@dataclass
class ModelCard:
    """What a model does and how to feed it (docs/architecture.md#model-card).

    - ``task``: ``bline2``, ``bline3``, ``lus4`` (clip classifiers) or ``seg`` (frame segmenter);
    - ``class_names``: output order; must be the task's classes;
    - ``architecture``: ``{"name": registry name, "args": {...}}`` (see ``registry.architecture``);
    - ``preprocessing``: ``size`` [H, W], ``frames`` (T per window; None for segmenters),
      ``target_fps`` (None = native), ``normalisation`` {mean, std}, ``fan_crop`` (bool); more keys allowed;
    - ``label_source``: where the labels came from: crowd-soft, crowd-majority, crowd-ds, expert:NAME,
      expert-majority, truth, a manifest label column (bline2 ...), annotations[-staple|:NAME];
    - ``training_data``: e.g. ``{"clips": 120, "patients": 30, "class_counts": {...}}``;
    - ``validation_metrics``: the metric keys of docs/architecture.md#evaluation-outputs;
    - ``software`` and ``created`` (UTC ISO 8601): filled by ``stamped()``;
    - ``name``: a short id for result tables (optional); ``extra``: anything else JSON-able (a
      pretrained encoder's ``pretraining`` record: :attr:`pretraining`);
    - ``weights_sha256``: ``weights_digest`` of the weights, filled by ``save_model_file`` and
      checked on every load (empty in files saved before digests existed);
    - ``operating_point``: a classifier's decision threshold and recalibration, chosen on clips it did
      not train on (lungus.operating_point; empty: decide by the largest probability).
    """

    task: str
    class_names: list[str]
    architecture: dict[str, Any]
    preprocessing: dict[str, Any]
    label_source: str
    training_data: dict[str, Any] = field(default_factory=dict)
    validation_metrics: dict[str, Any] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=dict)
    created: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    operating_point: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def kind(self) -> str:
        """``classifier`` or ``segmenter``."""
        return SEGMENTER if self.task == SEG_TASK else CLASSIFIER

    @property
    def trained_on_simulated_clips(self) -> bool:
        """Whether the model learned from `lungus simulate`'s clips (``training_data["simulated_clips"]``).

        Cards from before that count: simulator truth labels clips only in simulated manifests (a
        segmenter's "truth" is any manifest's mask column, so says nothing); an untrained card (no
        training data) learned nothing from anywhere.
        """
        simulated = self.training_data.get("simulated_clips")
        if isinstance(simulated, (int, float)) and not isinstance(simulated, bool):
            return simulated > 0
        return bool(self.training_data.get("clips")) and self.label_source == "truth" and self.task != SEG_TASK

    @property
    def pretraining(self) -> dict[str, Any] | None:
        """What `lungus pretrain` recorded in a pretrained encoder's card (``extra["pretraining"]``: method,
        clips, loss curve, the modules that learned); None for a trained model. Its head never learned."""
        recorded = self.extra.get(PRETRAINING)
        return recorded if isinstance(recorded, dict) else None

    @property
    def decision(self) -> OperatingPoint | None:
        """The classifier's operating point; None: decide by the largest probability."""
        return OperatingPoint.from_card_field(self.operating_point)

    def validate(self) -> ModelCard:
        """Check every field (ValueError saying what to fix); fills the architecture's defaults. Returns self."""
        if self.task not in TASKS:
            raise ValueError(f"card task {self.task!r} is not one of {', '.join(TASKS)}")
        expected = task_class_names(self.task)
        if not isinstance(self.class_names, (list, tuple)) or list(self.class_names) != expected:
            raise ValueError(
                f"card class_names {self.class_names!r} must be the {self.task} classes {expected!r}"
            )
        self.class_names = list(self.class_names)
        arch = self.architecture
        if (
            not isinstance(arch, dict)
            or not isinstance(arch.get("name"), str)
            or not isinstance(arch.get("args", {}), dict)
        ):
            raise ValueError(f"card architecture must be {{'name': str, 'args': dict}}, got {arch!r}")
        try:
            self.architecture = architecture(arch["name"], **arch.get("args", {}))
            spec_kind = get_spec(arch["name"]).kind
        except LungUSError as error:
            raise ValueError(f"card architecture: {error}") from None
        if spec_kind != self.kind:
            raise ValueError(
                f"card task {self.task} needs a {self.kind}, but {arch['name']} is a {spec_kind}"
            )
        self.preprocessing = self._checked_preprocessing(self.preprocessing)
        source = self.label_source
        if not isinstance(source, str) or not source.strip() or len(source) > 200 or "\n" in source:
            raise ValueError(
                f"card label_source {source!r} must name where the labels came from, e.g. "
                f"{', '.join(KNOWN_LABEL_SOURCES)}"
            )
        for name in ("training_data", "validation_metrics", "software", "extra"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(f"card {name} must be a dict, got {type(value).__name__}")
            setattr(self, name, _jsonable(name, value))
        if not isinstance(self.created, str) or not isinstance(self.name, str):
            raise ValueError("card created and name must be strings")
        if self.weights_sha256 != "" and not (
            isinstance(self.weights_sha256, str) and SHA256_HEX.fullmatch(self.weights_sha256)
        ):
            raise ValueError("card weights_sha256 must be 64 lowercase hex digits (a SHA-256)")
        if self.operating_point in (None, {}):
            self.operating_point = {}
        elif self.kind == SEGMENTER:
            raise ValueError("a segmenter's card has no operating_point (it is a classifier's decision threshold)")
        else:
            self.operating_point = _jsonable("operating_point",
                                             OperatingPoint.from_card_field(self.operating_point).to_card_field())
        return self

    def _checked_preprocessing(self, pre: Any) -> dict[str, Any]:
        if not isinstance(pre, dict):
            raise ValueError(f"card preprocessing must be a dict, got {type(pre).__name__}")
        pre = _jsonable("preprocessing", pre)
        size = pre.get("size")
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_FRAME_SIDE for s in size)
        ):
            raise ValueError(
                f"card preprocessing.size must be [height, width] in pixels (1 to {MAX_FRAME_SIDE}), got {size!r}"
            )
        frames = pre.get("frames")
        if self.kind == CLASSIFIER:
            if not (
                isinstance(frames, int) and not isinstance(frames, bool) and 0 < frames <= MAX_WINDOW_FRAMES
            ):
                raise ValueError(
                    f"card preprocessing.frames must be the frames per window (1 to {MAX_WINDOW_FRAMES}), "
                    f"got {frames!r}"
                )
            if frames * size[0] * size[1] > MAX_WINDOW_PIXELS:
                raise ValueError(
                    f"card preprocessing asks for windows of {frames} x {size[0]} x {size[1]} pixels, more than "
                    f"{MAX_WINDOW_PIXELS:,}; use fewer frames or a smaller size"
                )
            stride = pre.get("eval_stride")
            if stride is not None and not (
                isinstance(stride, int) and not isinstance(stride, bool) and stride > 0
            ):
                raise ValueError(
                    f"card preprocessing.eval_stride must be a whole number of frames (> 0) or null, got {stride!r}"
                )
            rule = pre.get("eval_aggregation")
            if rule is not None and clip_rule_problem(rule):
                raise ValueError(f"card preprocessing.eval_aggregation: {clip_rule_problem(rule)}")
        elif frames not in (None, 1):
            raise ValueError(f"a segmenter's preprocessing.frames must be null, got {frames!r}")
        fps = pre.get("target_fps")
        if fps is not None and not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0):
            raise ValueError(f"card preprocessing.target_fps must be > 0 or null (native rate), got {fps!r}")
        pre["normalisation"] = check_normalisation(pre.get("normalisation"))
        if not isinstance(pre.get("fan_crop"), bool):
            raise ValueError(
                f"card preprocessing.fan_crop must be true or false, got {pre.get('fan_crop')!r}"
            )
        return pre

    def stamped(self) -> ModelCard:
        """A copy with the software versions and the UTC creation date filled in."""
        data = self.to_dict()
        data["software"] = software_versions()
        data["created"] = utc_now()
        return ModelCard.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable("card", asdict(self))

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """A validated card from a dict (keys this version doesn't know are kept under ``extra``)."""
        if not isinstance(data, dict):
            raise ValueError(f"a model card must be a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        try:
            card = cls(**known)
        except TypeError as error:
            missing = re.findall(r"'(\w+)'", str(error))
            raise ValueError(f"model card lacks {', '.join(missing) or 'required fields'}") from None
        if unknown:
            card.extra = {**unknown, **(card.extra if isinstance(card.extra, dict) else {})}
        return card.validate()

    def default_input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The input shape the card's preprocessing produces: (B, 1, T, H, W) or (B, 1, H, W)."""
        height, width = self.preprocessing["size"]
        if self.kind == CLASSIFIER:
            return (batch, 1, self.preprocessing["frames"], height, width)
        return (batch, 1, height, width)


@dataclass
class LoadedModel:
    """A model rebuilt from a model file, in eval mode, with its card."""

    model: nn.Module
    card: ModelCard
    path: Path | None = None


CardLike = ModelCard | dict


def as_card(card: CardLike, path: os.PathLike | str | None = None) -> ModelCard:
    """A validated ModelCard from a card or dict; a LungUSError (naming ``path``) if it is not valid."""
    try:
        if isinstance(card, ModelCard):
            return ModelCard.from_dict(card.to_dict())
        return ModelCard.from_dict(card)
    except ValueError as error:
        raise LungUSError(str(error), path=path) from None
    except TypeError as error:  # a field of the wrong JSON type that no check above foresaw
        raise LungUSError(f"card field of the wrong type ({error_detail(error)})", path=path) from None


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper."""
    return getattr(model, "module", model) if isinstance(getattr(model, "module", None), nn.Module) else model


def check_model_matches_card(
    model: nn.Module, card: ModelCard, path: os.PathLike | str | None = None
) -> None:
    """The model's architecture and class count must be the card's."""
    recorded = getattr(model, "architecture_json", None)
    if recorded is not None and json.loads(recorded) != card.architecture:
        raise LungUSError(
            f"the card's architecture {json.dumps(card.architecture)} is not the model's {recorded}; "
            "record lungus.models.architecture(name, **args) for the model you built",
            path=path,
        )
    if getattr(model, "num_classes", card.num_classes) != card.num_classes:
        raise LungUSError(
            f"the model has {model.num_classes} outputs but the card names {card.num_classes} classes",
            path=path,
        )


def write_atomically(path: os.PathLike | str, write: Callable[[Path], None]) -> Path:
    """Run ``write(temp_path)`` on a temporary file in the target's folder, then move it into place."""
    with atomic_path(path, suffix=".tmp") as temporary:
        write(temporary)
    return Path(path)


def save_model_file(path: os.PathLike | str, model: nn.Module, card: CardLike) -> Path:
    """Write ``{"format_version", "state_dict", "card"}`` atomically; returns the path.

    The card is validated; it must describe this model (architecture and class count); its
    ``weights_sha256`` is set to the digest of the weights written.
    Stamp it first (``card.stamped()``) to record the software versions and creation date.
    """
    model = unwrap(model)
    card = as_card(card, path)
    check_model_matches_card(model, card, path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    card.weights_sha256 = weights_digest(state)
    payload = {"format_version": FORMAT_VERSION, "state_dict": state, "card": card.to_dict()}
    return write_atomically(path, lambda temp: torch.save(payload, temp))


def _load_payload(path: Path, map_location: Any) -> dict:
    if not path.is_file():
        raise LungUSError("no such model file", path=path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" in message or "Unsupported class" in message:
            raise LungUSError(
                "refused: the file holds Python objects, not just tensors and plain data (tampered with, "
                "or not a lungus model file); only use model files from sources you trust",
                path=path,
            ) from None
        reason = message.split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:120] if message else ""
        raise LungUSError(
            f"not a readable model file (corrupt or another format: {reason})", path=path
        ) from None
    except Exception as error:  # zip/EOF errors of truncated or foreign files
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise LungUSError(
            f"not a readable model file (corrupt, truncated or another format: {reason})", path=path
        ) from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise LungUSError(
            "not a lungus model file (no format_version); a model file is the dict that "
            "lungus.models.save_model_file writes",
            path=path,
        )
    version = payload["format_version"]
    if version not in SUPPORTED_FORMAT_VERSIONS:
        newer = isinstance(version, int) and version > max(SUPPORTED_FORMAT_VERSIONS)
        raise LungUSError(
            f"model file format_version {version!r} is not supported; this lungus reads format_version "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}"
            + ("; update lungus to load it" if newer else "; re-save the model with this lungus"),
            path=path,
        )
    for key in ("state_dict", "card"):
        if not isinstance(payload.get(key), dict):
            raise LungUSError(f"damaged model file: '{key}' is missing or not a dict", path=path)
    state = payload["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise LungUSError(
            "damaged model file: state_dict holds something other than named tensors", path=path
        )
    check_digest(payload["card"].get("weights_sha256"), weights_digest(state), path)
    return payload


def read_model_file_card(path: os.PathLike | str) -> ModelCard:
    """Only the card of a model file (the weights are read but no model is built)."""
    path = Path(path)
    return as_card(_load_payload(path, "cpu")["card"], path)


def load_model_file(path: os.PathLike | str, map_location: Any = "cpu") -> LoadedModel:
    """Rebuild the model a file describes, load its weights (weights_only=True), eval mode."""
    path = Path(path)
    payload = _load_payload(path, map_location)
    card = as_card(payload["card"], path)
    state = payload["state_dict"]
    try:
        model = build_from_architecture(card.architecture, card.num_classes)
    except LungUSError as error:
        raise LungUSError(f"cannot rebuild the model: {error}", path=path) from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or misshapen:
        example = (missing or unexpected or misshapen)[0]
        raise LungUSError(
            f"damaged model file: its weights do not fit {card.architecture['name']} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(misshapen)} of another shape, "
            f"e.g. {example})",
            path=path,
        )
    model.load_state_dict(state)
    return LoadedModel(model=model.eval(), card=card, path=path)


def update_card(path: os.PathLike | str, **changes: Any) -> ModelCard:
    """Rewrite a model file's card with ``changes`` (card fields), weights untouched (their digest is
    checked first), atomically; the new card. Cross-validation records each fold model's operating
    point this way once every fold has its out-of-fold predictions."""
    path = Path(path)
    payload = _load_payload(path, "cpu")
    card = as_card({**payload["card"], **changes}, path)
    payload["card"] = card.to_dict()
    write_atomically(path, lambda temp: torch.save(payload, temp))
    return card
