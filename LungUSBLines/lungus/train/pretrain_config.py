"""Pretraining configuration: one validated dataclass, like lungus.train.config.TrainConfig.

A pretrained encoder is only useful to the run that fine-tunes it if both build the same network
and feed it the same input, so the settings that make them (model, model_args, size, frames,
layout, ...) and the optimisation and runtime settings are TrainConfig's own fields, with their
help and checks (:func:`shared`); only the contrastive settings are new here. A training recipe
(``--config Resources/recipes/covid_blues_bline2.yaml``) therefore works as it is: its
label-only and evaluation keys (task, label_source, eval_*, class_weights, ...) are ignored.
This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lungus.errors import LungUSError
from lungus.train.config import (
    TrainConfig,
    field_problem,
    setting,
    setting_defaults,
    setting_field,
    settings_dict,
    settings_from_sources,
)

#: The TrainConfig settings a pretraining run has too: the network, its input, the optimisation
#: and the runtime. The fine-tuning run must repeat the network and input ones (docs/pretraining.md).
SHARED_SETTINGS = ("model", "model_args", "size", "frames", "target_fps", "fan_crop", "layout", "fallback_sector",
                   "augment", "cache_dir", "epochs", "batch_size", "lr", "weight_decay", "schedule", "grad_clip",
                   "seed", "device", "workers", "amp", "channels_last", "threads")


def shared(name: str, default: Any = dataclasses.MISSING) -> Any:
    """TrainConfig's field ``name`` (help, checks, option spelling) for PretrainConfig; ``default``
    replaces TrainConfig's where pretraining needs another."""
    item = setting_field(name)
    if default is dataclasses.MISSING and item.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=item.default_factory, metadata=item.metadata)
    value = item.default if default is dataclasses.MISSING else default
    return dataclasses.field(default=value, metadata=item.metadata)


def _run_folder_problem(out: str) -> str | None:
    if str(out).lower().endswith(".pt"):
        return f"is the run folder, not the model file (RUN/model.pt is written in it), got {out}"
    return None


def _temperature_problem(temperature: float) -> str | None:
    return None if 0 < temperature <= 1 else f"must be in (0, 1], got {temperature}"


@dataclass
class PretrainConfig:
    """Everything a pretraining run depends on; saved in its checkpoint and the encoder's card.

    ``clips``: a folder of clips (each clip its own patient) or a manifest CSV (its ``clip`` and
    ``patient`` columns; labels are not read). The two views of a clip are windows up to
    ``neighbour_gap`` frames apart, each augmented with its own draw (``augment``); the other
    clips in the batch, other patients' when the manifest says, are the negatives.
    """

    clips: str = setting(help="a folder of clips (any format lungus reads; each clip its own patient) or a "
                         "manifest CSV (its clip and patient columns; labels are not read)", metavar="DIR|MANIFEST")
    out: str = setting(help="run folder: model.pt (the pretrained encoder), metrics.csv, checkpoint.pt",
                       check=_run_folder_problem)
    model: str = shared("model")
    model_args: dict[str, Any] = shared("model_args")
    size: tuple[int, int] = shared("size")
    frames: int = shared("frames")
    target_fps: float | None = shared("target_fps")
    fan_crop: bool = shared("fan_crop")
    layout: str = shared("layout")
    fallback_sector: tuple[float, float, float, float, float] | None = shared("fallback_sector")
    augment: bool | dict[str, Any] = shared("augment")
    cache_dir: str | None = shared("cache_dir")
    holdout_fold: int | None = setting(None, help="leave out the clips of this fold of the manifest's fold column "
                                       "(lungus split): per-fold pretraining, so that a cross-validation fold's "
                                       "test patients are not seen (docs/pretraining.md#per-fold)", minimum=0,
                                       default_text="pretrain on every clip")
    # contrastive learning
    temperature: float = setting(0.2, help="NT-Xent temperature: lower weighs the hardest negatives more",
                                 check=_temperature_problem)
    neighbour_gap: int = setting(8, help="frames between the starts of a clip's two windows at most (0: the same "
                                 "window twice, each augmented its own way)", minimum=0)
    projection_dim: int = setting(64, help="size of the projection the contrastive loss compares (discarded "
                                  "after pretraining)", minimum=2)
    # optimisation (contrast needs negatives: a bigger batch than supervised training's default)
    epochs: int = shared("epochs", 50)
    batch_size: int = shared("batch_size", 32)
    lr: float = shared("lr", 1e-3)
    weight_decay: float = shared("weight_decay")
    schedule: str = shared("schedule")
    grad_clip: float = shared("grad_clip")
    # runtime
    seed: int = shared("seed")
    device: str = shared("device")
    workers: int = shared("workers")
    amp: bool = shared("amp")
    channels_last: bool = shared("channels_last")
    threads: int | None = shared("threads")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for item in dataclasses.fields(self):
            problem = field_problem(item, getattr(self, item.name))
            if problem:
                raise LungUSError(f"pretraining config: {problem}")
        if self.batch_size < 2:
            raise LungUSError("pretraining config: batch_size must be >= 2: the other clips of a batch are the "
                              "negatives")
        # The checks and normalisations of the shared settings (size pairs, augmentation ranges) are TrainConfig's.
        training = self.training_config()
        self.size, self.fallback_sector = training.size, training.fallback_sector
        training.augmentation()

    def training_config(self) -> TrainConfig:
        """The TrainConfig of the same network, input, optimisation and runtime: its preprocessing,
        augmentation and card fields are this run's, and a fine-tuning run repeats its network and input."""
        return TrainConfig(manifest=self.clips, out=self.out,
                           **{name: getattr(self, name) for name in SHARED_SETTINGS})

    @property
    def run_dir(self) -> Path:
        return Path(self.out)

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The settings that have a default, as ``to_dict`` writes them."""
        return setting_defaults(cls)

    @classmethod
    def from_sources(cls, yaml_path: str | os.PathLike | None = None, **overrides: Any) -> PretrainConfig:
        """Defaults, then the YAML file's keys (a training recipe's label-only keys ignored), then
        command-line ``overrides`` (None = not given)."""
        return cls(**settings_from_sources(cls, "pretraining", ("clips", "out"), yaml_path, overrides,
                                           ignored=TRAINING_ONLY_SETTINGS))


#: A training recipe's keys that pretraining has no use for (labels, evaluation, model selection).
TRAINING_ONLY_SETTINGS = frozenset(
    {f.name for f in dataclasses.fields(TrainConfig)} - {f.name for f in dataclasses.fields(PretrainConfig)})
