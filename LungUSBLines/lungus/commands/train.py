"""lungus train: the external training loop (also under torchrun)."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.progress_lines import add_progress_lines_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a clip classifier or a frame segmenter (torchrun-ready)",
        description="Train a B-line clip classifier (bline2, bline3, lus4) or a frame segmenter (seg) from a "
        "manifest. Runs unchanged as `torchrun --nproc_per_node N -m lungus train ...`. Settings come from "
        "defaults, then --config YAML, then these options. Writes RUN/model.pt (with its card), metrics.csv, "
        "checkpoint.pt and TensorBoard logs.",
    )
    parser.add_argument("--manifest", help="manifest CSV")
    parser.add_argument("--task", choices=["bline2", "bline3", "lus4", "seg"])
    parser.add_argument("--model", help="registry name (see `lungus train --list-models`)")
    parser.add_argument("--out", help="run folder")
    parser.add_argument("--label-source", dest="label_source",
                        help="crowd-soft | crowd-majority | crowd-ds | expert:NAME | expert-majority | truth | "
                        "bline2/bline3/lus4 (a plain column); default: the task's column, else truth")
    parser.add_argument("--config", help="YAML file of settings (keys as in lungus.train.config.TrainConfig)")
    parser.add_argument("--model-arg", dest="model_arg", action="append", default=[], metavar="NAME=VALUE",
                        help="architecture argument, e.g. width=16 (repeatable)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--size", help="input size N or HxW after fan crop, e.g. 96 or 128x160")
    parser.add_argument("--frames", type=int, help="frames per training window")
    parser.add_argument("--target-fps", dest="target_fps", type=float, help="resample clips to this frame rate")
    parser.add_argument("--folds", type=int, help="K-fold cross-validation by patient: K runs, pooled out-of-fold "
                        "metrics, and RUN/model.pt = the K fold models as one ensemble")
    parser.add_argument("--fold", type=int, help="use this fold of the manifest's fold column for validation")
    parser.add_argument("--val-fraction", dest="val_fraction", type=float,
                        help="share of patients held out for validation when there is no --fold (0: none)")
    parser.add_argument("--patience", type=int, help="stop after this many epochs without validation improvement")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--seeds", type=int, help="train N models from seeds SEED, SEED+1, ... on the same split "
                        "and write their average as RUN/model.pt (under --folds: in every fold)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--workers", type=int, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, help="torch CPU threads per process")
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    parser.add_argument("--pretrained", action="store_true", default=None,
                        help="start from torchvision's weights (needs internet or a filled TORCH_HOME)")
    parser.add_argument("--init", help="start from a local weights file (model file or state_dict)")
    parser.add_argument("--cache-dir", dest="cache_dir", help="where prepared clips are cached")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_progress_lines_argument(
        parser, "DONE of TOTAL epochs over all folds and seeds, with two decimals inside an epoch"
    )
    parser.add_argument("--list-models", action="store_true", help="list the registry and exit")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lungus.models.registry import available_models, describe_model, parse_arch_args
    from lungus.progress_lines import print_progress
    from lungus.train.config import TrainConfig

    if args.list_models:
        for name in available_models():
            print(describe_model(name), end="\n\n")
        return 0
    overrides = {key: getattr(args, key) for key in (
        "manifest", "task", "model", "out", "label_source", "epochs", "batch_size", "lr", "size", "frames",
        "target_fps", "folds", "fold", "val_fraction", "patience", "seed", "seeds", "device", "workers", "threads",
        "augment", "pretrained", "init", "cache_dir")}
    if args.model_arg:
        overrides["model_args"] = parse_arch_args(args.model_arg)
    config = TrainConfig.from_sources(args.config, **overrides)
    check_confined(args, [config.manifest])
    # Counts epochs over all folds and seeds: fit counts its own, cross_validate and fit_seeds add theirs.
    progress = print_progress if args.progress_lines else None
    if config.folds > 1:
        from lungus.train.cv import cross_validate

        result = cross_validate(config, resume=args.resume, progress=progress)
        print(result.summary_line())
        return 0
    from lungus.train.seeds import fit_seeds

    fit_seeds(config, resume=args.resume, progress=progress)
    return 0

