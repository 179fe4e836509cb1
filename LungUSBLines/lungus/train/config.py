"""Training configuration: one validated dataclass, from defaults, a YAML file and the command line.

Every setting is a field of :class:`TrainConfig` whose metadata holds its help and its checks
(:func:`setting`). The `lungus train` options (lungus.commands.train) and the Slicer panel's
request (LungUSTrainLib.training) are made from these fields, so help, checks and spellings
live here once. This module imports no torch: Slicer's Python loads it before PyTorch is installed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungus.clip_rules import CLIP_RULE_HELP, clip_rule_problem
from lungus.data.labels.tasks import DEFAULT_TASK, SEG_TASK, TASKS
from lungus.data.pipeline.layouts import LAYOUTS
from lungus.device import DEFAULT_DEVICE, DEVICE_HELP, device_problem
from lungus.errors import LungUSError
from lungus.operating_point import CALIBRATIONS, DEFAULT_THRESHOLD_RULE, threshold_rule_problem

SCHEDULES = ("onecycle", "cosine")
#: In ``init`` under ``folds``, stands for the fold number: each fold starts from its own file
#: (per-fold pretraining, docs/pretraining.md#per-fold).
FOLD_PLACEHOLDER = "{fold}"
FUSION_MODEL = "fusion"
#: The recipes of the source repository (Resources/recipes); they are not installed with the package.
REPOSITORY_RECIPES = Path(__file__).resolve().parents[3] / "Resources" / "recipes"

# A value -> what is wrong with it ("must be ..."), or None. Checked only when the value is not None.
Check = Callable[[Any], "str | None"]


def setting(default: Any = dataclasses.MISSING, *, help: str, choices: tuple[str, ...] | None = None,
            minimum: float | None = None, check: Check | None = None, default_text: str | None = None,
            factory: Callable[[], Any] | None = None, **option: Any) -> Any:
    """A TrainConfig field with its help, its allowed values and how the command line spells it.

    ``default_text`` says what the default means where the value alone does not (None settings);
    ``option`` holds argparse keywords for `lungus train` (flag, metavar, nargs, action).
    """
    metadata = {"help": help, "choices": choices, "minimum": minimum, "check": check,
                "default_text": default_text, "option": option}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _size_problem(size: Any) -> str | None:
    height, width = _pair(size)
    return None if min(height, width) >= 32 else f"must be at least 32x32, got {height}x{width}"


def _lr_problem(lr: float) -> str | None:
    return None if 0 < lr < 10 else f"must be in (0, 10), got {lr}"


def _fraction_problem(fraction: float) -> str | None:
    return None if 0 <= fraction < 1 else f"must be in [0, 1), got {fraction}"


def _positive_problem(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def _non_negative_problem(value: float) -> str | None:
    return None if value >= 0 and math.isfinite(value) else f"must be a finite number >= 0, got {value}"


def _decay_problem(factor: float) -> str | None:
    return None if 0 < factor <= 1 else f"must be in (0, 1], got {factor}"


def _device_problem(device: str) -> str | None:
    problem = device_problem(str(device))  # "device must be ...": the setting's name is added by its check
    return None if problem is None else problem.removeprefix("device ")


def _sector_problem(sector: Any) -> str | None:
    if len(sector) == 5:
        return None
    return "is (apex_row, apex_col, half_angle_deg, inner, outer) as fractions"


def _clip_rule_problem(rule: Any) -> str | None:
    problem = clip_rule_problem(rule)
    return None if problem is None else "must be a clip rule: " + problem


def _augment_problem(augment: Any) -> str | None:
    if isinstance(augment, (bool, dict)):
        return None
    return "must be true, false or a mapping of augmentation settings"


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

    manifest: str = setting(help="manifest CSV")
    out: str = setting(help="run folder")
    task: str = setting(DEFAULT_TASK, help="what to train: a clip classifier of a label scheme, or a frame "
                        "segmenter (seg)", choices=TASKS)
    model: str = setting("frame_cnn", help="registry name (see `lungus train --list-models`)")
    model_args: dict[str, Any] = setting(factory=dict, help="architecture argument, e.g. width=16 (repeatable)",
                                         default_text="the architecture's own", flag="--model-arg",
                                         action="append", metavar="NAME=VALUE")
    label_source: str | None = setting(
        None, help="crowd-soft | crowd-majority | crowd-ds | expert:NAME | expert-majority | truth | "
        "bline2/bline3/lus4 (a plain column); segmenters: truth | labelmaps | annotations[:RATER] | weak:SOURCE "
        "(masks where a row has them, else its clip label in SOURCE)", default_text="the task's column, else truth")
    pretrained: bool = setting(False, help="start from torchvision's weights (needs internet or a filled "
                               "TORCH_HOME)")
    init: str | None = setting(None, help="start from a local weights file (model file or state_dict; under "
                               "--folds, {fold} in it stands for the fold number)",
                               default_text="random weights")
    # input
    size: tuple[int, int] = setting((96, 96), help="input size N or HxW after fan crop, e.g. 96 or 128x160",
                                    check=_size_problem, default_text="96x96", metavar="N|HxW")
    frames: int = setting(16, help="frames per training window (segmenter: frames drawn per clip per epoch)",
                          minimum=1)
    target_fps: float | None = setting(None, help="resample clips to this frame rate", check=_positive_problem,
                                       default_text="the clip's own rate")
    fan_crop: bool = setting(True, help="crop each clip to its ultrasound fan before resizing")
    layout: str = setting("cartesian", help="polar: unwrap sector fans about the probe apex "
                          "(lungus.data.pipeline.transforms)", choices=LAYOUTS)
    fallback_sector: tuple[float, float, float, float, float] | None = setting(
        None, help="polar: the sector of clips whose fan is not detected, as fractions of the frame",
        check=_sector_problem, default_text="cartesian letterbox", nargs=5, type=float,
        metavar=("APEX_ROW", "APEX_COL", "HALF_ANGLE", "INNER", "OUTER"))
    augment: bool | dict[str, Any] = setting(
        True, help="random gain, contrast, speckle, rotation, flip, shift and time reversal per training clip "
        "(YAML: a mapping overrides lungus.data.pipeline.augment.AugmentConfig ranges)", check=_augment_problem)
    eval_aggregation: str = setting("max", help=f"how window scores become a clip score: {CLIP_RULE_HELP} "
                                    "(docs/frame-fusion.md#clip-rules)", check=_clip_rule_problem)
    eval_stride: int | None = setting(None, help="frames between evaluation windows",
                                      default_text="frames // 2")
    eval_flip: bool = setting(False, help="also score each window mirrored left-right and average "
                              "(test-time augmentation)")
    cache_dir: str | None = setting(None, help="where prepared clips are cached",
                                    default_text=".lungus-cache beside the run folder")
    # fusion (docs/frame-fusion.md): a frame classifier on the fused features of trained backbones
    backbones: str | None = setting(None, help="--model fusion: comma-separated backbones, each a lungus model "
                                    "file or resnet18 / resnet34 / mobilenet_v3_small[=WEIGHTS_FILE]",
                                    default_text="none")
    classifier: str = setting("logreg", help="--model fusion: the classifier fitted to the fused features: "
                              "logreg, svm (RBF, two-class tasks), rf or gbm (lungus.models.fusion.CLASSIFIERS)")
    frame_labels: str | None = setting(None, help="--model fusion: per-frame labels, 'masks' (a frame has B-lines "
                                       "when its mask has any), 'annotations' / 'annotations:RATER' (the "
                                       "same from the AnnotateUltrasound files beside the clips) or a "
                                       "frames manifest CSV (clip,frame,label)",
                                       default_text="the clip's label on every frame")
    filter_frames: str | None = setting(None, help="--model fusion: drop frames of B-line clips without B-line "
                                        "evidence from training: 'masks', 'annotations', or a model file "
                                        "whose frame score decides", default_text="keep every frame")
    features_dir: str | None = setting(None, help="--model fusion: the feature cache (lungus features --out)",
                                       default_text="features/ in the cache folder")
    # optimisation
    epochs: int = setting(30, help="passes over the training clips", minimum=1)
    batch_size: int = setting(8, help="clips (segmenter: frames) per optimisation step", minimum=1)
    lr: float = setting(3e-3, help="learning rate (onecycle: its peak)", check=_lr_problem)
    weight_decay: float = setting(1e-2, help="AdamW weight decay")
    schedule: str = setting("onecycle", help="learning-rate schedule", choices=SCHEDULES)
    layer_lr_decay: float = setting(
        1.0, help="fine-tuning (with --init): the head learns at --lr and each earlier layer group (the pooling, then "
        "the encoder's stages back to the first) at F times the rate of the one after it; 1: one rate for all "
        "(docs/pretraining.md#fine-tuning)", check=_decay_problem, metavar="F")
    grad_clip: float = setting(1.0, help="largest gradient norm (0: no clipping)")
    class_weights: bool = setting(True, help="weight the loss by inverse class frequency")
    label_smoothing: float = setting(0.0, help="cross-entropy label smoothing")
    sord_alpha: float = setting(2.0, help="ordinal tasks: sharpness of the soft ordinal (SORD) targets")
    dice_weight: float = setting(1.0, help="segmenter: weight of the Dice term beside cross-entropy")
    weak_weight: float = setting(1.0, help="segmenter with --label-source weak:SOURCE: weight of the clip-label "
                                 "term beside Dice + cross-entropy (docs/segmenter-weak-labels.md)",
                                 check=_non_negative_problem)
    patience: int | None = setting(None, help="stop after this many epochs without validation improvement",
                                   default_text="never stop early")
    # validation
    fold: int | None = setting(None, help="use this fold of the manifest's fold column for validation",
                               default_text="val-fraction of the patients")
    folds: int = setting(1, help="K-fold cross-validation by patient: K runs, pooled out-of-fold metrics, and "
                         "RUN/model.pt = the K fold models as one ensemble", minimum=1)
    val_fraction: float = setting(0.2, help="share of patients held out for validation when there is no --fold "
                                  "(0: none)", check=_fraction_problem)
    threshold_rule: str = setting(
        DEFAULT_THRESHOLD_RULE, help="classifiers: how the card's decision threshold on P(B-lines) is chosen on "
        "clips the model did not train on (the validation split, or the other folds' out-of-fold predictions): "
        "youden, sensitivity:F, specificity:F or fixed:F (docs/evaluation.md#operating-points)",
        check=threshold_rule_problem, metavar="RULE")
    calibration: str = setting("none", help="classifiers: recalibrate the probabilities on the same clips "
                               "(temperature or isotonic; checked by ECE)", choices=CALIBRATIONS)
    seeds: int = setting(1, help="train N models from seeds SEED, SEED+1, ... on the same split and write their "
                         "average as RUN/model.pt (under --folds: in every fold)", minimum=1)
    # runtime
    seed: int = setting(0, help="seed of weights, sampling and augmentation")
    split_seed: int | None = setting(None, help="seed of the patient split alone", default_text="--seed")
    device: str = setting(DEFAULT_DEVICE, help=DEVICE_HELP.removesuffix(" (default auto)"), check=_device_problem)
    workers: int = setting(0, help="DataLoader worker processes")
    amp: bool = setting(True, help="bf16 autocast on CUDA; ignored on CPU")
    channels_last: bool = setting(False, help="convolution weights channels-last: faster on CPU and GPU")
    threads: int | None = setting(None, help="torch CPU threads per process", minimum=1,
                                  default_text="torch's choice")

    def __post_init__(self) -> None:
        self.size = _pair(self.size)
        self.validate()

    def validate(self) -> None:
        def fail(message: str) -> None:
            raise LungUSError(f"training config: {message}")

        for item in dataclasses.fields(self):
            problem = field_problem(item, getattr(self, item.name))
            if problem:
                fail(problem)
        if self.fallback_sector is not None:
            self.fallback_sector = tuple(float(v) for v in self.fallback_sector)
        if self.seeds > 1 and self.task == SEG_TASK:
            fail("seeds > 1 averages clip classifiers; train a segmenter with seeds: 1")
        if self.pretrained and self.init:
            fail("pass either pretrained or init, not both")
        if self.init and FOLD_PLACEHOLDER in self.init and self.folds < 2:
            fail(f"init with {FOLD_PLACEHOLDER} names one file per cross-validation fold; it needs folds > 1")
        if (self.model == FUSION_MODEL) != bool(self.backbones):
            fail("--model fusion needs --backbones, and --backbones needs --model fusion")
        if self.model != FUSION_MODEL and (self.frame_labels or self.filter_frames):
            fail("frame_labels and filter_frames are for --model fusion")

    def preprocessing(self):
        """The Preprocessing every clip of this run goes through (and its model card records)."""
        from lungus.data.pipeline.clip_preparation import Preprocessing

        return Preprocessing(self.size, self.target_fps, self.fan_crop, self.layout, self.fallback_sector)

    def augmentation(self):
        """The AugmentConfig of training clips (lungus.data.pipeline.augment), or None: no augmentation."""
        if not self.augment:
            return None
        from lungus.data.pipeline.augment import AugmentConfig

        try:
            return AugmentConfig.from_settings(self.augment if isinstance(self.augment, dict) else None)
        except (TypeError, ValueError) as error:
            raise LungUSError(f"training config: augment: {error}") from None

    def card_preprocessing(self, normalisation: dict[str, float]) -> dict[str, Any]:
        """The model card's ``preprocessing``: how to turn a clip into this model's input."""
        return {
            "size": list(self.size),
            "frames": self.frames if self.task != SEG_TASK else None,
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
    def feature_folder(self) -> Path:
        """Where fusion runs cache frame features: ``features_dir``, else features/ in the cache folder."""
        return Path(self.features_dir) if self.features_dir else self.cache_folder / "features"

    @property
    def partition_seed(self) -> int:
        """The seed of the patient split (validation share, cross-validation folds)."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def stride(self) -> int:
        return self.eval_stride or max(1, self.frames // 2)

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The settings that have a default, as ``to_dict`` writes them."""
        return setting_defaults(cls)

    @classmethod
    def from_sources(cls, yaml_path: str | os.PathLike | None = None, **overrides: Any) -> TrainConfig:
        """Defaults, then the YAML file's keys, then command-line ``overrides`` (None = not given)."""
        return cls(**settings_from_sources(cls, "training", ("manifest", "out"), yaml_path, overrides))


def settings_dict(config: Any) -> dict[str, Any]:
    """A run's settings (a dataclass of them) as plain JSON-able values: tuples become lists."""
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(config).items()}


def setting_defaults(config_class: type) -> dict[str, Any]:
    """The settings of ``config_class`` that have a default, as :func:`settings_dict` writes them."""
    values = {}
    for item in dataclasses.fields(config_class):
        if item.default is not dataclasses.MISSING:
            values[item.name] = list(item.default) if isinstance(item.default, tuple) else item.default
        elif item.default_factory is not dataclasses.MISSING:
            values[item.name] = item.default_factory()
    return values


def settings_from_sources(config_class: type, what: str, required: tuple[str, ...],
                          yaml_path: str | os.PathLike | None, overrides: dict[str, Any],
                          ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The settings of a ``config_class`` run (a dataclass of settings) given by the YAML file's keys, then
    command-line ``overrides`` (None = not given); the dataclass adds its defaults. YAML keys in
    ``ignored`` are dropped (another command's settings in a shared recipe); any other key the class
    lacks is an error naming the settings there are, as is a ``required`` setting left unset."""
    values: dict[str, Any] = {}
    if yaml_path is not None:
        values.update({k: v for k, v in read_yaml_config(yaml_path).items() if k not in ignored})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise LungUSError(f"unknown {what} setting {unknown[0]!r}; settings are: {', '.join(sorted(known))}",
                          yaml_path)
    for name in required:
        if not values.get(name):
            raise LungUSError(f"{what} config: {name} is required (--{name} or a {name}: key)")
    return values


#: The card's preprocessing keys that are TrainConfig settings of the same name.
_CARD_PREPROCESSING_SETTINGS = ("frames", "target_fps", "fan_crop", "layout", "fallback_sector",
                                "eval_aggregation", "eval_stride", "eval_flip")


def card_settings(card: Any) -> dict[str, Any]:
    """The settings a model was trained with that make its network and its input, read back from
    its card (lungus.models.model_file.ModelCard; the inverse of :meth:`TrainConfig.card_preprocessing`):
    task, model, model_args, size and the preprocessing. A run that starts from the model's
    weights (``init``) needs them all, or the weights would not fit or would see other input.
    Keys a card lacks (older cards) are left out: the defaults apply."""
    architecture = card.architecture or {}
    if architecture.get("name") == "ensemble":
        raise LungUSError("an ensemble's weights cannot start a run; start from one of its members")
    preprocessing = card.preprocessing or {}
    settings: dict[str, Any] = {"task": card.task, "model": architecture.get("name"),
                                "model_args": dict(architecture.get("args") or {})}
    if preprocessing.get("size") is not None:
        settings["size"] = _pair(preprocessing["size"])
    for name in _CARD_PREPROCESSING_SETTINGS:
        if preprocessing.get(name) is not None:
            value = preprocessing[name]
            settings[name] = tuple(value) if name == "fallback_sector" else value
    return settings


def setting_field(name: str) -> dataclasses.Field:
    """TrainConfig's field ``name`` (its type, default and metadata)."""
    for item in dataclasses.fields(TrainConfig):
        if item.name == name:
            return item
    raise KeyError(name)


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for setting ``name`` ("seeds must be >= 1, got 0"), or None."""
    return field_problem(setting_field(name), value)


def field_problem(item: dataclasses.Field, value: Any) -> str | None:
    """:func:`setting_problem` for a field in hand (TrainConfig.validate walks them all, as
    lungus.train.pretrain_config.PretrainConfig.validate does its own)."""
    if value is None:
        return None
    name, metadata = item.name, item.metadata
    choices, minimum, check = metadata["choices"], metadata["minimum"], metadata["check"]
    if choices is not None and value not in choices:
        return f"{name} {value!r} is not one of {', '.join(choices)}"
    if minimum is not None:
        try:
            below = float(value) < minimum
        except (TypeError, ValueError):
            return f"{name} must be a number, got {value!r}"
        if below:
            return f"{name} must be >= {minimum}, got {value}"
    problem = check(value) if check is not None else None
    return f"{name} {problem}" if problem else None


def default_text(item: dataclasses.Field) -> str:
    """The default of a setting as `lungus train --help` shows it."""
    if item.metadata["default_text"] is not None:
        return item.metadata["default_text"]
    if item.default is dataclasses.MISSING:
        return "required, here or in --config"
    if isinstance(item.default, bool):
        return "on" if item.default else "off"
    return str(item.default)


def option_flag(item: dataclasses.Field) -> str:
    """How `lungus train` spells setting ``item``: --batch-size for batch_size (a few have their own)."""
    return item.metadata["option"].get("flag", "--" + item.name.replace("_", "-"))


def option_arguments(settings: dict[str, Any]) -> list[str]:
    """`lungus train` arguments that set ``settings`` (TrainConfig names; None: not given)."""
    arguments: list[str] = []
    for name, value in settings.items():
        if value is None:
            continue
        flag = option_flag(setting_field(name))
        if isinstance(value, bool):
            arguments.append(flag if value else "--no-" + flag[2:])
        elif name == "model_args":
            for key, item in value.items():
                arguments += [flag, f"{key}={item}"]
        elif isinstance(value, dict):
            raise LungUSError(f"{name} settings are a mapping: put them in a --config YAML file")
        elif name == "size":
            height, width = _pair(value)
            arguments += [flag, f"{height}x{width}"]
        elif isinstance(value, (tuple, list)):
            arguments += [flag, *map(str, value)]
        else:
            arguments += [flag, str(value)]
    return arguments


def repository_recipe(name: str) -> Path | None:
    """Resources/recipes/NAME when lungus runs from the source repository; None from an installed
    package, which carries no recipes (callers then ask for --config)."""
    path = REPOSITORY_RECIPES / name
    return path if path.is_file() else None


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


def fold_config(config: TrainConfig, fold: int) -> TrainConfig:
    """The settings of fold ``fold``'s run in RUN/fold<k>: its starting weights are ``init`` with the fold
    placeholder, if any, filled in."""
    init = config.init.replace(FOLD_PLACEHOLDER, str(fold)) if config.init else config.init
    return config.replace(out=str(config.run_dir / f"fold{fold}"), folds=1, fold=None, init=init)
