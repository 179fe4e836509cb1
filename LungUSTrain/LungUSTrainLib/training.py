"""Training as a `lungus train` subprocess: the command line, its progress, its result.

The run goes on outside Slicer's process (the GUI stays free, a crash cannot take the scene
with it); :func:`start_training` returns a LungUSBLinesLib.processes.EngineProcess to poll.
Progress comes from `lungus train --progress-lines` (lungus.progress_lines): one fraction over
all folds, seeds and epochs, with what was just done; the other lines are the log people read.
When it has finished,
:func:`read_training_result` reads the model card of RUN/model.pt: validation metrics,
training data, best epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from lungus.data.labels.tasks import CLASSIFICATION_TASKS
from lungus.errors import LungUSError
from lungus.progress_lines import ProgressLine
from lungus.train.config import card_settings, option_arguments, setting_field, setting_problem
from LungUSBLinesLib.processes import EngineProcess, JobProgress, Launcher, engine_command

TASKS = CLASSIFICATION_TASKS  # segmenters need masks the panel does not export
MODEL_FILE = "model.pt"
# Metrics shown from a card, in this order, when present.
_SHOWN_METRICS = (
    "auc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "f1_macro",
    "kappa",
    "kappa_quadratic",
    "ece",
)


def classifier_models() -> list[str]:
    """The clip-classifier architectures of the model registry (see `lungus train --list-models`)."""
    from lungus.models.registry import available_models

    return available_models("classifier")


# The settings the panel sets: each is TrainConfig's field of that name, with its type, help and checks.
PANEL_SETTINGS = ("task", "model", "label_source", "folds", "seeds", "epochs", "size", "frames", "batch_size",
                  "threads", "device", "model_args", "init")


class _TrainRequestMethods:
    def settings(self) -> dict[str, Any]:
        """The TrainConfig settings this request gives (the others: the recipe's, else the engine's default)."""
        return {name: getattr(self, name) for name in PANEL_SETTINGS if getattr(self, name) not in (None, {})}

    def validate(self) -> TrainRequest:
        if not Path(self.manifest).is_file():
            raise LungUSError("no such manifest file", self.manifest)
        if self.task is not None and self.task not in TASKS:
            raise LungUSError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not str(self.out).strip():
            raise LungUSError("choose a folder for the training run")
        if (Path(self.out) / "checkpoint.pt").exists():
            raise LungUSError("this run folder already holds a training run; choose a new folder", self.out)
        if self.recipe and not Path(self.recipe).is_file():
            raise LungUSError("no such recipe file", self.recipe)
        for name, value in self.settings().items():
            problem = setting_problem(name, value)  # TrainConfig's own checks
            if problem:
                raise LungUSError(problem)
        if self.model is not None:
            classifiers = classifier_models()
            if self.model not in classifiers:
                raise LungUSError(f"unknown classifier {self.model!r}; choose one of {', '.join(classifiers)}")
        return self

    def arguments(self) -> list[str]:
        arguments = ["--manifest", os.fspath(self.manifest), "--out", os.fspath(self.out)]
        # Options after --config override the recipe's settings, as on the command line.
        if self.recipe and str(self.recipe).strip():
            arguments += ["--config", os.fspath(self.recipe)]
        return [*arguments, *option_arguments(self.settings()), "--progress-lines", *self.extra_arguments]

    def command(self, python: str | None = None) -> list[str]:
        """``[python, -m, lungus, train, ...]`` after validating (python: PythonSlicer in Slicer)."""
        self.validate()
        return engine_command(python, "train", self.arguments())


def _request_field(name: str) -> tuple[str, Any, Any]:
    item = setting_field(name)
    return name, item.type, field(default=None, metadata=item.metadata)


TrainRequest = make_dataclass(
    "TrainRequest",
    [
        ("manifest", str),
        ("out", str),
        ("recipe", "str | None", field(default=None)),  # a --config YAML, e.g. Resources/recipes/*.yaml
        *map(_request_field, PANEL_SETTINGS),
        ("extra_arguments", "list[str]", field(default_factory=list)),  # passed on as they are
    ],
    bases=(_TrainRequestMethods,),
    namespace={"__module__": __name__},
)
TrainRequest.__doc__ = """One `lungus train` run. Its settings are TrainConfig's fields of PANEL_SETTINGS (None:
the recipe's, else the engine's default), checked by TrainConfig's own checks; ``recipe`` is a
--config YAML they override; ``extra_arguments`` are passed on as they are."""


def retrain_request(
    reviews: str | os.PathLike, reviewer: str, model: str | os.PathLike, out: str | os.PathLike, **settings: Any
) -> TrainRequest:
    """Fine-tune a reviewed model on a review folder (docs/review.md#reviewing-in-slicer): train on
    ``reviews``/manifest.csv with the reviewer's labels (``expert:<reviewer>``), starting from
    ``model``'s weights (``init``), with the architecture and input the model was trained with
    (its card). ``settings``: other PANEL_SETTINGS (epochs, folds, seeds, device, ...)."""
    from lungus.review.store import REVIEW_MANIFEST, ReviewFolder, check_reviewer

    folder = Path(reviews).expanduser()
    manifest = folder / REVIEW_MANIFEST
    if not manifest.is_file():
        raise LungUSError("no reviews here (no manifest.csv): review clips into this folder first", folder)
    check_reviewer(reviewer, folder)
    model = Path(model).expanduser()
    if model.suffix.lower() != ".pt" or not model.is_file():
        raise LungUSError("choose the reviewed model's .pt file (`lungus train` writes it): its weights start the run",
                          model)
    from lungus.models.model_files import read_card  # torch: the run needs it anyway

    card = read_card(model)
    if card.task not in TASKS:
        raise LungUSError(
            f"a {card.task} model: retrain a segmenter on the corrected masks with `lungus train --manifest "
            f"{manifest} --task seg --label-source labelmaps --init {model}` (docs/review.md#training-from-reviews)",
            model,
        )
    rows = ReviewFolder(folder).rows()
    schemes = {row.get("scheme") for row in rows} - {None, ""}
    if schemes and schemes != {card.task}:
        raise LungUSError(f"the reviews are {', '.join(sorted(schemes))} labels but the model is a {card.task} "
                          "classifier; choose the model that was reviewed", folder)
    if not any(row.get(f"expert_{reviewer}") for row in rows):
        raise LungUSError(f"no verdicts by {reviewer!r} in these reviews", manifest)
    from_card = card_settings(card)
    own = {name: from_card.pop(name) for name in PANEL_SETTINGS if name in from_card}
    return TrainRequest(
        manifest=str(manifest),
        out=os.fspath(out),
        **{**settings, **own},
        label_source=f"expert:{reviewer}",
        init=str(model),
        extra_arguments=option_arguments(from_card),  # the card's other preprocessing settings
    )


def parse_progress_line(line: str) -> JobProgress | None:
    """A `lungus train --progress-lines` line -> JobProgress (the whole run's fraction); else None."""
    progress = ProgressLine.parse(line)
    return None if progress is None else JobProgress(progress.fraction, progress.what)


def log_lines(lines: list[str]) -> list[str]:
    """The lines people read: all but the progress lines."""
    return [line for line in lines if ProgressLine.parse(line) is None]


def start_training(
    request: TrainRequest, *, python: str | None = None, launch: Launcher | None = None
) -> EngineProcess:
    """Start `lungus train` for ``request``; poll the returned process for output and progress."""
    command = request.command(python)
    return EngineProcess(command, parse_progress=parse_progress_line, launch=launch).start()


@dataclass
class TrainingResult:
    """What a finished run's model card says."""

    model_path: Path
    card: Any  # lungus.models.model_file.ModelCard

    @property
    def validation_metrics(self) -> dict[str, Any]:
        return dict(self.card.validation_metrics)

    def describe(self) -> str:
        card = self.card
        lines = [f"Model: {self.model_path}"]
        architecture = card.architecture.get("name")
        members = card.architecture.get("args", {}).get("members") if architecture == "ensemble" else None
        if members:
            names = sorted({member.get("name") for member in members})
            architecture = f"ensemble of {len(members)} {'/'.join(map(str, names))} models"
        lines.append(f"Task {card.task} ({', '.join(card.class_names)}), architecture {architecture}, "
                     f"labels: {card.label_source}")
        data = card.training_data or {}
        if members:
            parts = data.get("members") or []
            lines.append("Training data per model: " + ", ".join(
                f"{_span([part.get(key) for part in parts])} {key}" for key in ("clips", "patients")))
        elif data:
            counts = data.get("class_counts") or {}
            shares = ", ".join(f"{name} {count:g}" for name, count in counts.items())
            lines.append(f"Training data: {data.get('clips')} clips, {data.get('patients')} patients"
                         + (f" ({shares})" if shares else ""))
        extra = card.extra or {}
        if extra.get("best_epoch"):
            lines.append(f"Best epoch: {extra['best_epoch']} of {extra.get('epochs_run', '?')}")
        metrics = dict(card.validation_metrics or {})
        title = "Validation"
        if any(key.startswith("cv_") for key in metrics):
            # A cross-validation run's model: the pooled out-of-fold estimate for unseen patients.
            metrics = {key[3:]: value for key, value in metrics.items() if key.startswith("cv_")}
            title = "Cross-validation, out of fold"
        if metrics:
            shown = [
                f"{key} {metrics[key]:.3f}"
                for key in _SHOWN_METRICS
                if isinstance(metrics.get(key), (int, float))
            ]
            where = f"{metrics.get('n_clips')} clips, {metrics.get('n_patients')} patients"
            lines.append(
                f"{title} ({where}): " + (", ".join(shown) if shown else "no metric could be computed")
            )
        else:
            lines.append("Validation: none (no patients were held out)")
        return "\n".join(lines)


def _span(values: list[Any]) -> str:
    known = [v for v in values if isinstance(v, (int, float))]
    if not known:
        return "?"
    low, high = min(known), max(known)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def read_training_result(run: str | os.PathLike) -> TrainingResult:
    """The result of a finished run (its folder, or the model file)."""
    from lungus.models.model_files import read_card

    path = Path(run)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise LungUSError("no model file: the training run did not finish", path)
    return TrainingResult(model_path=path, card=read_card(path))
