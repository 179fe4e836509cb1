"""lungus train: the external training loop (also under torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.progress_lines import add_progress_lines_argument
from lungus.train.config import TrainConfig, default_text, option_flag  # imports no torch


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a clip classifier or a frame segmenter (torchrun-ready)",
        description="Train a B-line clip classifier (bline2, bline3, lus4) or a frame segmenter (seg) from a "
        "manifest. Runs unchanged as `torchrun --nproc_per_node N -m lungus train ...`. Settings come from "
        "defaults, then --config YAML, then these options. Writes RUN/model.pt (with its card), metrics.csv, "
        "checkpoint.pt and TensorBoard logs.",
    )
    parser.add_argument("--config", help="YAML file of settings named as the options below, with _ for -, "
                        "e.g. batch_size: 8; options given here override it (default: none)")
    add_setting_options(parser)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_progress_lines_argument(
        parser, "DONE of TOTAL epochs over all folds and seeds, with two decimals inside an epoch"
    )
    parser.add_argument("--list-models", action="store_true", help="list the registry and exit")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lungus.models.registry import available_models, describe_model
    from lungus.progress_lines import print_progress

    if args.list_models:
        for name in available_models():
            print(describe_model(name), end="\n\n")
        return 0
    config = TrainConfig.from_sources(args.config, **setting_overrides(args))
    check_confined(args, [config.manifest])
    # Counts epochs over all folds and seeds: fit counts its own, cross_validate and fit_seeds add theirs.
    progress = print_progress if args.progress_lines else None
    if config.model == "fusion":
        from lungus.train.fusion import train_fusion

        print(train_fusion(config, progress=progress).summary_line())
        return 0
    if config.folds > 1:
        from lungus.train.cv import cross_validate

        result = cross_validate(config, resume=args.resume, progress=progress)
        print(result.summary_line())
        return 0
    from lungus.train.seeds import fit_seeds

    fit_seeds(config, resume=args.resume, progress=progress)
    return 0


def add_setting_options(parser: argparse.ArgumentParser, config_class: type = TrainConfig) -> None:
    """One option per field of ``config_class`` (TrainConfig, or lungus pretrain's PretrainConfig, whose
    fields are made the same way), with its help, choices and default (lungus.train.config)."""
    types = typing.get_type_hints(config_class)
    settings = parser.add_argument_group(
        "settings", f"one option per setting ({config_class.__module__}.{config_class.__name__}); "
        "each overrides the --config file, which overrides the default")
    for item in dataclasses.fields(config_class):
        keywords: dict[str, Any] = {"dest": item.name, "default": None,
                                    "help": f"{item.metadata['help']} (default: {default_text(item)})"}
        kind = _value_type(types[item.name])
        if kind is bool:
            keywords["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float, str):
            keywords["type"] = kind
        if item.metadata["choices"] is not None:
            keywords["choices"] = item.metadata["choices"]
        keywords.update({k: v for k, v in item.metadata["option"].items() if k != "flag"})
        settings.add_argument(option_flag(item), **keywords)


def _value_type(hint: Any) -> Any:
    """The type a setting's option parses: its annotation without None (``int | None`` -> int);
    of ``bool | dict`` (augment) the bool, as the command line turns it on or off."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return next(kind for kind in kinds if kind is not type(None))


def setting_overrides(args: argparse.Namespace, config_class: type = TrainConfig) -> dict[str, Any]:
    """The settings of ``config_class`` given on the command line (None: not given)."""
    overrides = {item.name: getattr(args, item.name) for item in dataclasses.fields(config_class)}
    if overrides.get("model_args") is not None:
        from lungus.models.registry import parse_arch_args

        overrides["model_args"] = parse_arch_args(overrides["model_args"])
    return overrides

