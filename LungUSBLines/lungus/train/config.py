"""Training configuration: one validated dataclass, from defaults, a YAML file and the command line."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungus.data.schemes import LABEL_SCHEMES
from lungus.errors import LungUSError

TASKS = (*LABEL_SCHEMES, "seg")
SCHEDULES = ("onecycle", "cosine")
AGGREGATIONS = ("max", "mean")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as RUN/config.yaml and in the model card.

    Input: ``size`` (H, W) after fan crop and aspect-preserving pad; ``frames`` per
    training window, sampled at ``target_fps`` (None keeps the clip's own rate).
    Validation: ``fold`` holds out that fold's patients as the validation set when the
    manifest has a fold column; otherwise ``val_fraction`` of the patients are held out.
    ``folds`` > 1 runs K-fold cross-validation (each fold held out in turn) instead.
    ``seeds`` > 1 trains that many models from seeds ``seed``, ``seed + 1``, ... on the same
    split and writes their average (lungus.train.seeds); under ``folds`` each fold does so.
    ``split_seed`` (None: ``seed``) draws the patient split alone, so seed ensemble members share it.
    """

    manifest: str
    out: str
    task: str = "bline2"
    model: str = "frame_cnn"
    model_args: dict[str, Any] = field(default_factory=dict)
    label_source: str | None = None  # None: the task's own column, else truth_<task>
    pretrained: bool = False
    init: str | None = None
    # input
    size: tuple[int, int] = (96, 96)
    frames: int = 16
    target_fps: float | None = None
    fan_crop: bool = True
    layout: str = "cartesian"  # "polar": unwrap sector fans about the probe apex (lungus.data.transforms)
    fallback_sector: tuple[float, float, float, float, float] | None = None  # polar: for undetected fans
    augment: bool | dict[str, Any] = True  # or overrides of lungus.data.augment.AugmentConfig
    eval_aggregation: str = "max"
    eval_stride: int | None = None  # frames between evaluation windows; None: frames // 2
    eval_flip: bool = False  # also score each window mirrored left-right and average (test-time augmentation)
    cache_dir: str | None = None  # None: RUN/../.lungus-cache beside the run
    # optimisation
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    grad_clip: float = 1.0
    class_weights: bool = True
    label_smoothing: float = 0.0
    sord_alpha: float = 2.0
    dice_weight: float = 1.0
    patience: int | None = None  # epochs without validation improvement before stopping
    # validation
    fold: int | None = None
    folds: int = 1
    val_fraction: float = 0.2
    seeds: int = 1
    # runtime
    seed: int = 0
    split_seed: int | None = None
    device: str = "auto"
    workers: int = 0
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    channels_last: bool = False  # convolution weights channels-last: faster on CPU and GPU
    threads: int | None = None  # torch CPU threads per process

    def __post_init__(self) -> None:
        self.size = _pair(self.size)
        self.validate()

    def validate(self) -> None:
        def fail(message: str) -> None:
            raise LungUSError(f"training config: {message}")

        if self.task not in TASKS:
            fail(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.schedule not in SCHEDULES:
            fail(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.layout not in ("cartesian", "polar"):
            fail(f"layout {self.layout!r} is not cartesian or polar")
        if self.fallback_sector is not None:
            if len(self.fallback_sector) != 5:
                fail("fallback_sector is (apex_row, apex_col, half_angle_deg, inner, outer) as fractions")
            self.fallback_sector = tuple(float(v) for v in self.fallback_sector)
        if not isinstance(self.augment, (bool, dict)):
            fail("augment must be true, false or a mapping of augmentation settings")
        if self.eval_aggregation not in AGGREGATIONS:
            fail(f"eval_aggregation {self.eval_aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
        for name in ("epochs", "batch_size", "frames", "folds", "seeds"):
            if int(getattr(self, name)) < 1:
                fail(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.size) < 32:
            fail(f"size must be at least 32x32, got {self.size[0]}x{self.size[1]}")
        if not 0 < self.lr < 10:
            fail(f"lr must be in (0, 10), got {self.lr}")
        if not 0 <= self.val_fraction < 1:
            fail(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.target_fps is not None and self.target_fps <= 0:
            fail(f"target_fps must be > 0, got {self.target_fps}")
        if self.seeds > 1 and self.task == "seg":
            fail("seeds > 1 averages clip classifiers; train a segmenter with seeds: 1")
        if self.pretrained and self.init:
            fail("pass either pretrained or init, not both")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            fail(f"device {self.device!r} is not auto, cpu, cuda, cuda:N or mps")

    def preprocessing(self):
        """The Preprocessing every clip of this run goes through (and its model card records)."""
        from lungus.data.preprocess import Preprocessing

        return Preprocessing(self.size, self.target_fps, self.fan_crop, self.layout, self.fallback_sector)

    def card_preprocessing(self, normalisation: dict[str, float]) -> dict[str, Any]:
        """The model card's ``preprocessing``: how to turn a clip into this model's input."""
        return {
            "size": list(self.size),
            "frames": self.frames if self.task != "seg" else None,
            "target_fps": self.target_fps,
            "normalisation": normalisation,
            "fan_crop": self.fan_crop,
            "layout": self.layout,
            "fallback_sector": None if self.fallback_sector is None else list(self.fallback_sector),
            "eval_aggregation": self.eval_aggregation,
            "eval_stride": self.stride,
            "eval_flip": self.eval_flip,
        }

    @property
    def run_dir(self) -> Path:
        return Path(self.out)

    @property
    def cache_folder(self) -> Path:
        """Where prepared clips are cached: ``cache_dir``, else .lungus-cache beside the run folder."""
        return Path(self.cache_dir) if self.cache_dir else self.run_dir.resolve().parent / ".lungus-cache"

    @property
    def partition_seed(self) -> int:
        """The seed of the patient split (validation share, cross-validation folds)."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def stride(self) -> int:
        return self.eval_stride or max(1, self.frames // 2)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["size"] = list(self.size)
        if self.fallback_sector is not None:
            data["fallback_sector"] = list(self.fallback_sector)
        return data

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The settings that have a default, as ``to_dict`` writes them."""
        values = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                values[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
        return values

    @classmethod
    def from_sources(cls, yaml_path: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the YAML file's keys, then command-line ``overrides`` (None = not given)."""
        values: dict[str, Any] = {}
        if yaml_path is not None:
            values.update(read_yaml_config(yaml_path))
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise LungUSError(f"unknown training setting {unknown[0]!r}; settings are: {', '.join(sorted(known))}",
                              yaml_path)
        for required in ("manifest", "out"):
            if not values.get(required):
                raise LungUSError(f"training config: {required} is required (--{required} or a {required}: key)")
        return cls(**values)


def read_yaml_config(path: str | os.PathLike) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise LungUSError("config file not found", path) from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise LungUSError(f"not valid YAML{line}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LungUSError("a training config must be a YAML mapping of setting: value", path)
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, str):
        try:
            parts = [int(p) for p in size.lower().replace("x", " ").split()]
        except ValueError:
            parts = []
        size = parts[0] if len(parts) == 1 else (parts or size)
    if isinstance(size, int):
        return (size, size)
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise LungUSError(f"training config: size must be N, HxW or [H, W], got {size!r}") from None
    return (height, width)
