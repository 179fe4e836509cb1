"""`lungus bench train`: seconds per training step of a clip classifier, as `lungus train` runs it.

Each step is the training loop's own (lungus.train.loop.train_one_epoch over prepared batches:
normalisation, forward, class-weighted cross-entropy, backward, gradient clipping, AdamW and the
LR schedule; bf16 autocast on a GPU when the config keeps ``amp``), on a batch of random uint8
windows shaped like the config's (``batch_size`` clips x ``frames`` x ``size``). Data loading and
augmentation are left out: they run in DataLoader workers and cost a few percent of a step.

Variants, timed in one run so their ratio holds on any machine:

- ``contiguous``: the default memory layout;
- ``channels_last``: the convolution weights stored channels-last (the ``channels_last: true``
  training setting, lungus.train.loop.to_channels_last).

Both on the CPU, and on the GPU when there is one. The model is the config's (default: the
COVID-BLUES recipe, Resources/recipes/covid_blues_bline2.yaml, when run from the repository;
else `lungus train`'s defaults), with untrained weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse

from lungus.bench import positive_int

HELP = "seconds per training step of a clip classifier (contiguous vs channels-last, CPU and GPU)"
USES_TORCH = True
VARIANTS = ("contiguous", "channels_last")
RECIPE = "covid_blues_bline2.yaml"  # in the repository's Resources/recipes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="a training config (default: the COVID-BLUES recipe "
                        "when run from the repository, else `lungus train`'s defaults)")
    parser.add_argument("--batch-size", type=positive_int, metavar="B", help="clips per step (default: the config's)")
    parser.add_argument("--steps", type=positive_int, default=3, metavar="N", help="steps per timed run (default 3)")
    parser.add_argument("--repeat", type=positive_int, default=3, metavar="R", help="timed runs (default 3)")
    parser.add_argument("--no-gpu", dest="gpu", action="store_false", help="time the CPU only")


def _config(args: argparse.Namespace):
    from lungus.data.labels.tasks import SEG_TASK
    from lungus.errors import LungUSError
    from lungus.train.config import TrainConfig, repository_recipe

    path = args.config or repository_recipe(RECIPE)
    config = TrainConfig.from_sources(path, manifest="-", out="-", batch_size=args.batch_size)
    if config.task == SEG_TASK:
        raise LungUSError("lungus bench train times clip classifiers; this config trains the segmenter", path)
    return config, path


def _timed_steps(config, device, channels_last: bool, steps: int, repeat: int):
    import torch

    from lungus.bench import measure
    from lungus.data.labels.schemes import scheme_classes
    from lungus.data.labels.tasks import is_ordinal
    from lungus.models.registry import build_model, get_spec
    from lungus.train.loop import build_optimizer, to_channels_last, train_one_epoch
    from lungus.train.losses import ClipLoss
    from lungus.train.setup import classification_task

    class_names = scheme_classes(config.task)
    torch.manual_seed(config.seed)
    model = build_model(config.model, len(class_names), **config.model_args).to(device)
    if channels_last:
        to_channels_last(model, device)
    task = classification_task(config, class_names, get_spec(config.model).normalisation(False, config.model_args))
    criterion = ClipLoss(torch.ones(len(class_names)), ordinal=is_ordinal(config.task)).to(device)
    height, width = config.size
    generator = torch.Generator().manual_seed(config.seed)
    batch = {
        "frames": torch.randint(0, 256, (config.batch_size, config.frames, height, width), dtype=torch.uint8,
                                generator=generator),
        "target": torch.eye(len(class_names))[torch.arange(config.batch_size) % len(class_names)],
    }
    # A schedule long enough for the warm-up and every timed step, so the LR never runs past its end.
    optimizer, scheduler = build_optimizer(model, config, steps * (repeat + 1))
    batches = [batch] * steps  # the loop only reads its batches

    def work() -> None:
        train_one_epoch(model, task, criterion, optimizer, scheduler, batches, device, config, 0, None)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return measure(work, repeat=repeat, warmup=1)


def run(args: argparse.Namespace) -> dict:
    import torch

    config, path = _config(args)
    devices = [torch.device("cpu")]
    if args.gpu and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows = []
    for device in devices:
        baseline = None
        for variant in VARIANTS:
            timing = _timed_steps(config, device, variant == "channels_last", args.steps, args.repeat)
            seconds = timing.median / args.steps
            baseline = baseline or seconds
            rows.append({
                "device": "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device),
                "variant": variant,
                "batch": config.batch_size,
                "frames": config.frames,
                "size": "x".join(map(str, config.size)),
                "s_per_step": round(seconds, 4),
                "clips_per_s": round(config.batch_size / seconds, 1),
                "speedup": round(baseline / seconds, 2),
            })
    return {"results": rows, "config": str(path) if path else "lungus train defaults", "model": config.model,
            "model_args": config.model_args}
