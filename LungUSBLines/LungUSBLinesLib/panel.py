"""What the LungUS panels offer: their choices, defaults, checks and fresh output folders.

Qt-free, so it is tested headless. The modules' ``@parameterNodeWrapper`` classes (saved with
the scene) take their choices and defaults from here, and the widgets fill their lists from
here, so the list a user sees and the values a saved scene may hold are one definition.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path

from lungus.data.labels.tasks import CLASSIFICATION_TASKS
from lungus.data.labels.tasks import DEFAULT_TASK as ENGINE_DEFAULT_TASK
from lungus.device import DEFAULT_DEVICE as ENGINE_DEFAULT_DEVICE
from lungus.device import DEVICE_NAMES
from lungus.errors import LungUSError
from lungus.explanations import EXPLAIN_METHODS

# (title shown, value stored) pairs. The values are the engine's own names (lungus.device,
# lungus.explanations, lungus.data.labels.tasks); the panels only give them titles.
_DEVICE_TITLES = {
    "auto": "Automatic (GPU if available)",
    "cpu": "CPU",
    "cuda": "GPU (CUDA)",
}
DEVICE_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (_DEVICE_TITLES[name], name) for name in DEVICE_NAMES if name in _DEVICE_TITLES
)
DEFAULT_DEVICE = ENGINE_DEFAULT_DEVICE

NO_EXPLANATION = ""
_EXPLANATION_TITLES = {
    "gradcam": "Grad-CAM",
    "lime": "LIME (superpixels)",
    "cam": "Class activation map",
    "attention": "Attention",
}
# A method the engine adds without a title here fails at import, not silently unoffered.
EXPLANATION_CHOICES: tuple[tuple[str, str], ...] = (
    ("None", NO_EXPLANATION),
    *((_EXPLANATION_TITLES[method], method) for method in EXPLAIN_METHODS),
)
DEFAULT_EXPLANATION = NO_EXPLANATION

_TASK_TITLES = {
    "bline2": "B-lines absent / present",
    "bline3": "None / discrete / confluent",
    "lus4": "LUS score 0-3",
}
# Clip classifiers only: a segmenter needs masks the Train panel does not export.
TASK_CHOICES: tuple[tuple[str, str], ...] = tuple(
    (f"{_TASK_TITLES[task]} ({task})", task) for task in CLASSIFICATION_TASKS
)
DEFAULT_TASK = ENGINE_DEFAULT_TASK
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
REVIEWS_FOLDER = "LungUS reviews"


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


def explanation_choices(methods: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The (title, method) pairs to offer: always "None", then those of ``methods`` (what the
    classifier supports), in EXPLANATION_CHOICES order."""
    offered = set(methods)
    return tuple(
        (title, value)
        for title, value in EXPLANATION_CHOICES
        if value == NO_EXPLANATION or value in offered
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
