"""Self-supervised pretraining of a clip classifier's encoder on unlabelled clips (docs/pretraining.md).

Contrastive, SimCLR-style (Chen et al. 2020): each clip gives two views per epoch, a random
window and a temporal neighbour of it, each through the ultrasound augmentation of supervised
training (lungus.data.pipeline.augment); the network's window embedding goes through a small
projection head, and the NT-Xent loss asks each view to find its partner among the batch's
other clips (another patient's, when the manifest names patients). Chosen over masked-frame
modelling because it trains the very network the recipe fine-tunes (a small CNN and its
attention pooling, at the recipe's 64x64 input) in minutes per epoch on a laptop CPU, while
masked modelling pays off with large vision transformers and long schedules (docs/pretraining.md#why).

The loop is the training loop's pieces (lungus.train.loop): the same sampler, optimiser,
schedule, bf16 autocast on a GPU, torchrun, per-epoch atomic checkpoints and seeding by (seed,
epoch, sample), so ``--resume`` after a kill replays the uninterrupted run. The result is a
normal model file: the classifier with its pretrained encoder and pooling, its head untrained,
its card's ``extra["pretraining"]`` saying so; ``lungus train --init`` copies what learned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lungus.data.labels.schemes import scheme_classes
from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.clip_preparation import ClipCache
from lungus.data.pipeline.training_sets import ManifestClips, ViewPairSet, augmenter, readable_clips
from lungus.errors import LungUSError
from lungus.models.layers import ProjectionHead
from lungus.models.model_file import ModelCard, save_model_file
from lungus.models.registry import build_model, get_spec
from lungus.models.weights import PRETRAINING
from lungus.predict.classifier import window_inputs
from lungus.progress import Progress
from lungus.train.checkpoint import resume_from_checkpoint, save_checkpoint
from lungus.train.distributed import DistributedContext, average_buffers, unwrap
from lungus.train.loop import (
    MODEL_NAME,
    RunLogger,
    batch_reporter,
    build_optimizer,
    check_replicas,
    epoch_line,
    epoch_seed,
    open_run_folder,
    place_model,
    run_context,
    train_one_epoch,
    training_loader,
)
from lungus.train.losses import NTXentLoss
from lungus.train.pretrain_config import PretrainConfig
from lungus.train.setup import json_architecture, simulated_clips

#: The card of a pretrained encoder needs a task; its head (never trained) has this one's classes.
ENCODER_TASK = "bline2"
METHOD = "contrastive"


@dataclass
class PretrainResult:
    run_dir: Path
    model_path: Path | None
    history: list[dict[str, Any]]


class ContrastiveModel(nn.Module):
    """A clip classifier's window embedding (its ``clip_embedding``) under a projection head: the unit
    vectors the contrastive loss compares. The classifier's head takes no part and is frozen."""

    def __init__(self, network: nn.Module, projection_dim: int) -> None:
        super().__init__()
        self.network = network
        self.network.head.requires_grad_(False)
        dim = network.head.in_features
        self.projection = ProjectionHead(dim, dim, projection_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.network.clip_embedding(x))

    def learned_modules(self) -> list[str]:
        """The network's top-level modules that learn here (its card's ``pretraining["modules"]``)."""
        return [name for name, module in self.network.named_children()
                if any(p.requires_grad for p in module.parameters())]


class ContrastiveTask:
    """How a batch of view pairs (lungus.data.pipeline.training_sets.ViewPairSet) becomes the loss,
    in the shape lungus.train.loop.train_one_epoch calls."""

    def __init__(self, normalisation: dict[str, float]) -> None:
        self.normalisation = normalisation

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        # Both views in one forward pass: BatchNorm normalises them with the same statistics.
        views = torch.cat([batch["first"], batch["second"]])
        projections = model(window_inputs(views, self.normalisation, device))
        first, second = projections.chunk(2)
        return criterion(first, second, batch["group"])


def clip_manifest(clips: str) -> Manifest:
    """The clips to pretrain on: a manifest CSV as it is (labels unused), or a folder's clips
    (lungus.io.find_clips), each its own patient."""
    from lungus.io.formats import find_clips

    path = Path(clips)
    if path.is_dir():
        found = find_clips(path)
        if not found:
            raise LungUSError("no clips in this folder (lungus info lists what it can read)", path)
        return Manifest.from_rows(path, [{"clip": str(p.resolve()), "patient": str(p.resolve())} for p in found])
    if path.is_file() and path.suffix.lower() == ".csv":
        manifest = Manifest.load(path)
        manifest.require_columns("clip", "patient")
        return manifest
    if not path.exists():
        raise LungUSError("no such folder or manifest; --clips takes a folder of clips or a manifest CSV", path)
    raise LungUSError("--clips takes a folder of clips or a manifest CSV (.csv), not a single file", path)


def pretraining_rows(manifest: Manifest, holdout_fold: int | None) -> list[int]:
    """The manifest rows to pretrain on: all, or those outside fold ``holdout_fold`` of its fold column."""
    if holdout_fold is None:
        return list(range(len(manifest)))
    folds = manifest.folds()
    if not any(f is not None for f in folds):
        raise LungUSError("holdout_fold needs a manifest with a fold column; run `lungus split MANIFEST --folds K`",
                          manifest.path)
    if holdout_fold not in folds:
        raise LungUSError(f"no clips in fold {holdout_fold} to hold out (folds here: "
                          f"{', '.join(map(str, sorted({f for f in folds if f is not None})))})", manifest.path)
    return [row for row, fold in enumerate(folds) if fold != holdout_fold]


def pretrain(config: PretrainConfig, *, progress: Progress | None = None, log: Callable[[str], None] = print,
             resume: bool = False, context: DistributedContext | None = None) -> PretrainResult:
    """Pretrain as ``config`` says; write RUN/model.pt (the encoder), metrics.csv and checkpoint.pt.

    ``progress(epochs done, epochs, what)`` hears after every epoch and a few times inside one.
    Under torchrun each rank contrasts its own share of the batch (negatives from its own clips).
    """
    with run_context(config, context) as (device, context):
        if not context.is_main:
            log, progress = (lambda _m: None), None
        return _pretrain(config, device, context, progress, log, resume)


def _pretrain(config: PretrainConfig, device: torch.device, context: DistributedContext,
              progress: Progress | None, log: Callable[[str], None], resume: bool) -> PretrainResult:
    if config.threads:
        torch.set_num_threads(config.threads)
    checkpoint_path = open_run_folder(config, context, resume)
    torch.manual_seed(config.seed)
    training = config.training_config()
    manifest = clip_manifest(config.clips)
    clips = readable_clips(manifest, pretraining_rows(manifest, config.holdout_fold), training.preprocessing(),
                           ClipCache(training.cache_folder), log, "pretraining")
    if len(clips) < 2:
        raise LungUSError("contrastive pretraining needs at least 2 readable clips (the negatives)", manifest.path)
    network = build_model(config.model, len(scheme_classes(ENCODER_TASK)), **config.model_args)
    if not hasattr(network, "clip_embedding"):
        raise LungUSError(f"pretraining config: {config.model} has no window embedding to pretrain; use frame_cnn")
    contrastive = ContrastiveModel(network, config.projection_dim)
    normalisation = get_spec(config.model).normalisation(False, config.model_args)
    dataset = ViewPairSet(clips, config.frames, config.neighbour_gap, config.seed,
                          augmenter(training.augmentation()))
    patients = len(set(clips.patients))
    log(f"pretraining on {len(clips)} clips of {patients} patients (labels unused); {METHOD}, NT-Xent, "
        f"temperature {config.temperature}")
    model = place_model(contrastive, config, device, context)
    sampler, loader = training_loader(dataset, config, device, context)
    optimizer, scheduler = build_optimizer(model, config, len(loader))
    history: list[dict[str, Any]] = []
    if resume:
        history = resume_from_checkpoint(checkpoint_path, config, unwrap(model), optimizer, scheduler)["history"]
        log(f"resuming at epoch {len(history) + 1} of {config.epochs}")
    criterion, task = NTXentLoss(config.temperature), ContrastiveTask(normalisation)
    logger = RunLogger(config.run_dir, context.is_main)
    try:
        for epoch in range(len(history), config.epochs):
            started = time.time()
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            torch.manual_seed(epoch_seed(config.seed, epoch, context.rank))
            loss = train_one_epoch(model, task, criterion, optimizer, scheduler, loader, device, config, epoch, None,
                                   batch_reporter(progress, epoch, config.epochs, len(loader)))
            average_buffers(unwrap(model), context)
            history.append({"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "train_loss": loss,
                            "seconds": round(time.time() - started, 2)})
            logger.log(history)
            if context.is_main:
                save_checkpoint(checkpoint_path, {"config": json.loads(json.dumps(config.to_dict())),
                                                  "epoch": epoch + 1, "model": unwrap(model).state_dict(),
                                                  "optimizer": optimizer.state_dict(),
                                                  "scheduler": scheduler.state_dict(), "history": history})
            line = epoch_line(history[-1], config.epochs)
            log(line)
            if progress is not None:
                progress(epoch + 1, config.epochs, line)
    finally:
        logger.close()
    check_replicas(unwrap(model), context, config.run_dir)
    model_path = None
    if context.is_main:
        card = _encoder_card(config, contrastive, normalisation, manifest, clips, patients, history)
        model_path = save_model_file(config.run_dir / MODEL_NAME, network, card)
        log(f"saved {model_path}: fine-tune it with lungus train --init {model_path}")
        if progress is not None:
            progress(config.epochs, config.epochs, f"saved {model_path.name}")
    return PretrainResult(config.run_dir, model_path, history)


def _encoder_card(config: PretrainConfig, contrastive: ContrastiveModel, normalisation: dict[str, float],
                  manifest: Manifest, clips: ManifestClips, patients: int,
                  history: list[dict[str, Any]]) -> ModelCard:
    """The card of the pretrained encoder: what `lungus train --init` and people need to know."""
    record = {
        "kind": "encoder",
        "method": METHOD,
        "loss": "nt-xent",
        "positives": f"two augmented windows of a clip, starting up to {config.neighbour_gap} frames apart",
        "negatives": "the batch's other clips" if Path(config.clips).is_dir() else "the batch's clips of other patients",
        "modules": contrastive.learned_modules(),
        "clips": config.clips,
        "holdout_fold": config.holdout_fold,
        "epochs": len(history),
        "loss_curve": [round(float(row["train_loss"]), 5) for row in history],
    }
    return ModelCard(
        task=ENCODER_TASK,
        class_names=list(scheme_classes(ENCODER_TASK)),
        architecture=json_architecture(contrastive.network),
        preprocessing=config.training_config().card_preprocessing(normalisation),
        label_source="none (self-supervised)",
        training_data={"clips": len(clips), "patients": patients,
                       "simulated_clips": simulated_clips(manifest, clips.rows)},
        name=config.run_dir.name,
        extra={PRETRAINING: record, "config": config.to_dict()},
    ).stamped()
