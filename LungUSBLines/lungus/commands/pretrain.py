"""lungus pretrain: a self-supervised encoder from unlabelled clips, for `lungus train --init` (also under torchrun)."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.commands.train import add_setting_options, setting_overrides
from lungus.progress_lines import add_progress_lines_argument
from lungus.train.pretrain_config import TRAINING_ONLY_SETTINGS, PretrainConfig  # imports no torch

DESCRIPTION = """\
Pretrain a clip classifier's encoder on clips without labels (docs/pretraining.md): contrastive
(SimCLR's NT-Xent), the two views of a clip being augmented windows up to --neighbour-gap frames
apart, the negatives the batch's other clips (other patients' when a manifest names patients).
--clips is a folder of clips or a manifest CSV, whose labels are not read. A training recipe
works as --config: its network, input and augmentation settings are used, its label and
evaluation settings ignored. Writes RUN/model.pt (the encoder, its head untrained; its card says
so), metrics.csv and checkpoint.pt; fine-tune with
`lungus train --init RUN/model.pt --config RECIPE [--layer-lr-decay F]`.
Runs unchanged as `torchrun --nproc_per_node N -m lungus pretrain ...`."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pretrain", help="self-supervised encoder from unlabelled clips, for train --init",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file of settings named as the options below, with _ for -; a "
                        "training recipe's label and evaluation keys are ignored (default: none)")
    add_setting_options(parser, PretrainConfig)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_progress_lines_argument(parser, "DONE of TOTAL epochs, with two decimals inside an epoch")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lungus.progress_lines import print_progress
    from lungus.train.config import read_yaml_config
    from lungus.train.pretrain import pretrain

    config = PretrainConfig.from_sources(args.config, **setting_overrides(args, PretrainConfig))
    if config.clips.lower().endswith(".csv"):
        check_confined(args, [config.clips])
    if args.config:
        ignored = sorted(set(read_yaml_config(args.config)) & TRAINING_ONLY_SETTINGS)
        if ignored:
            print(f"ignoring the recipe's training-only settings: {', '.join(ignored)}")
    pretrain(config, resume=args.resume, progress=print_progress if args.progress_lines else None)
    return 0
