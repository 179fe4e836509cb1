"""What the LungUS panels offer: their choices, defaults, checks and fresh output folders.

Qt-free, so it is tested headless. The modules' ``@parameterNodeWrapper`` classes (saved with
the scene) take their choices and defaults from here, and the widgets fill their lists from
here, so the list a user sees and the values a saved scene may hold are one definition.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from lungus.errors import LungUSError

# (title shown, value stored) pairs.
DEVICE_CHOICES: tuple[tuple[str, str], ...] = (
    ("Automatic (GPU if available)", "auto"),
    ("CPU", "cpu"),
    ("GPU (CUDA)", "cuda"),
)
DEFAULT_DEVICE = "auto"

NO_EXPLANATION = ""
EXPLANATION_CHOICES: tuple[tuple[str, str], ...] = (
    ("None", NO_EXPLANATION),
    ("Grad-CAM", "gradcam"),
    ("Class activation map", "cam"),
    ("Attention", "attention"),
)
DEFAULT_EXPLANATION = NO_EXPLANATION

# The explain() output each map-reading method needs (lungus.infer.runners.explanation_maps);
# Grad-CAM needs none: it works for every model file.
_EXPLAIN_OUTPUTS = {"cam": "class_maps", "attention": "spatial_attention"}

TASK_CHOICES: tuple[tuple[str, str], ...] = (
    ("B-lines absent / present (bline2)", "bline2"),
    ("None / discrete / confluent (bline3)", "bline3"),
    ("LUS score 0-3 (lus4)", "lus4"),
)
DEFAULT_TASK = "bline2"
DEFAULT_TRAIN_MODEL = "frame_cnn"
DEFAULT_EXPORT_FORMAT = ".seq.nrrd"
# The Train panel's numbers: (minimum, maximum, default), as its spin boxes offer them.
TRAIN_NUMBERS: dict[str, tuple[int, int, int]] = {
    "epochs": (1, 1000, 30),
    "size": (32, 512, 96),
    "folds": (1, 20, 1),
    "seeds": (1, 10, 1),
}

# Default folders, under the user's home folder.
RESULTS_FOLDER = "LungUS results"
TRAINING_SETS_FOLDER = "LungUS training sets"
RUNS_FOLDER = "LungUS runs"


def home_folder(name: str) -> Path:
    """``name`` under the user's home folder (a panel's default output folder)."""
    return Path.home() / name


def choice_values(choices: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The stored values of (title, value) pairs, in order."""
    return tuple(value for _title, value in choices)


def check_choice(what: str, value: str, choices: tuple[tuple[str, str], ...]) -> str:
    """``value`` if it is one of ``choices``; LungUSError naming ``what`` and the choices if not
    (a scene saved by another version may hold a value this one does not offer)."""
    allowed = choice_values(choices)
    if value not in allowed:
        shown = ", ".join(repr(v) for v in allowed)
        raise LungUSError(f"{what} must be one of {shown}, got {value!r}")
    return value


def explanation_methods(model_path: str | os.PathLike) -> tuple[str, ...]:
    """The explanation methods the classifier in ``model_path`` supports, in EXPLANATION_CHOICES order.

    Grad-CAM works for every lungus model file; "cam" and "attention" read maps the model's
    ``explain()`` gives only for some architectures (class maps, spatial attention), so the
    model is built and run once on a blank window to see which it gives. Exported TorchScript or
    ONNX files and segmenters give none. LungUSError for a file that is not a model."""
    import torch

    from lungus.evaluate.model_eval import classification_task_from_card
    from lungus.models.model_file import file_kind, load_model_file
    from lungus.models.registry import CLASSIFIER

    if file_kind(model_path) != "model":
        return ()
    loaded = load_model_file(model_path)
    if loaded.card.kind != CLASSIFIER:
        return ()
    task = classification_task_from_card(loaded.card)
    height, width = loaded.card.preprocessing["size"]
    blank = torch.zeros((1, task.window, height, width), dtype=torch.uint8)
    with torch.no_grad():
        given = loaded.model.explain(task.inputs(blank, torch.device("cpu")))
    methods = ["gradcam"] + [method for method, key in _EXPLAIN_OUTPUTS.items() if key in given]
    return tuple(value for value in choice_values(EXPLANATION_CHOICES) if value in methods)


def explanation_choices(model_path: str | os.PathLike | None) -> tuple[tuple[str, str], ...]:
    """The (title, method) pairs to offer for the classifier ``model_path``: always "None", then
    the methods it supports. No path, or a file that is not a model: "None" only. Without
    PyTorch (a fresh Slicer) the file cannot be read: "None" and Grad-CAM, which every model
    file supports; Analyse installs PyTorch first."""
    if not model_path or not str(model_path).strip():
        return EXPLANATION_CHOICES[:1]
    try:
        supported = explanation_methods(model_path)
    except ImportError:
        supported = ("gradcam",)
    except LungUSError:
        return EXPLANATION_CHOICES[:1]
    return tuple(
        (title, value)
        for title, value in EXPLANATION_CHOICES
        if value == NO_EXPLANATION or value in supported
    )


def new_output_folder(base: str | os.PathLike, prefix: str, now: datetime.datetime | None = None) -> Path:
    """A folder under ``base`` that does not exist yet: ``base``/``prefix``-YYYYmmdd-HHMMSS, with
    -2, -3, ... when that name is taken (two exports in one second). Not created here."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate = Path(base).expanduser() / f"{prefix}-{stamp}"
    number = 2
    while candidate.exists():
        candidate = candidate.with_name(f"{prefix}-{stamp}-{number}")
        number += 1
    return candidate
