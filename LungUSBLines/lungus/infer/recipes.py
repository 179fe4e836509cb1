"""Model files with untrained weights, shaped exactly as `lungus train` would make them.

For benchmarks (speed does not depend on the weights) and tests (a valid card without a training
run). The architecture and preprocessing come from lungus.train.config.TrainConfig's defaults,
so a benchmark of "the default models" follows the recipe when it changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lungus.data.labels.tasks import SEG_TASK
from lungus.models.model_file import ModelCard, save_model_file, task_class_names
from lungus.models.registry import architecture, build_model, get_spec


def recipe_config(task: str, model: str | None = None, **overrides: Any):
    """The TrainConfig `lungus train --task TASK [--model MODEL]` would run with (no files read)."""
    from lungus.train.config import TrainConfig

    values = {"manifest": "-", "out": "-", "task": task, **overrides}
    if model is not None:
        values["model"] = model
    return TrainConfig(**values)


def recipe_card(
    task: str,
    model: str | None = None,
    *,
    model_args: dict[str, Any] | None = None,
    name: str | None = None,
    **overrides: Any,
) -> ModelCard:
    """The card `lungus train` would write for this task and model (``overrides``: TrainConfig
    settings such as size, frames, target_fps, eval_stride), stamped, marked untrained."""
    config = recipe_config(task, model, **overrides)
    args = dict(model_args if model_args is not None else config.model_args)
    preprocessing = config.card_preprocessing(get_spec(config.model).normalisation(False, args))
    return ModelCard(
        task=task,
        class_names=task_class_names(task),
        architecture=architecture(config.model, **args),
        preprocessing=preprocessing,
        label_source="truth",
        name=name or f"untrained-{config.model}",
        extra={"untrained": True, **_task_extra(task, preprocessing)},
    ).stamped()


def _task_extra(task: str, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """What training records beside a segmenter's card (its default post-processing)."""
    if task != SEG_TASK:
        return {}
    from lungus.predict.segmenter import FrameSegmenter

    classes = task_class_names(task)
    return FrameSegmenter(classes, normalisation=preprocessing["normalisation"]).card_extra()


def random_model_file(
    path: str | os.PathLike,
    task: str,
    model: str | None = None,
    *,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
    name: str | None = None,
    **overrides: Any,
) -> Path:
    """Write a model file with freshly initialised weights and the card training would give it."""
    card = recipe_card(task, model, model_args=model_args, name=name, **overrides)
    torch.manual_seed(seed)
    network = build_model(card.architecture["name"], card.num_classes, **card.architecture["args"])
    return save_model_file(path, network.eval(), card)
