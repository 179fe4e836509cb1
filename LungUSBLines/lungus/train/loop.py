"""The training loop: one readable loop for every task, on one process or under torchrun.

Shaped like torchvision's reference scripts: ``train_one_epoch`` and ``evaluate`` around
a loop over epochs that checkpoints after every epoch. Exact resumption rests on one
rule: every random draw derives from (seed, epoch, sample index) (the sampler's
shuffle, the dataset's augmentation, dropout), so a run resumed at an epoch boundary
replays what the uninterrupted run would have done.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from lungus.atomic import atomic_write_text
from lungus.device import resolve_device
from lungus.errors import LungUSError
from lungus.operating_point import OperatingPoint
from lungus.progress import Progress
from lungus.train.checkpoint import CHECKPOINT_NAME, resume_from_checkpoint, save_checkpoint
from lungus.train.config import TrainConfig
from lungus.train.distributed import (
    DistributedContext,
    average_buffers,
    broadcast_object,
    gather_objects,
    init_distributed,
    replica_checksums,
    shutdown_distributed,
    unwrap,
)
from lungus.train.pretrain_config import PretrainConfig

if TYPE_CHECKING:
    from lungus.train.setup import PreparedRun

#: How many times inside an epoch the progress callback hears of the batches done.
BATCH_REPORTS_PER_EPOCH = 20

MODEL_NAME = "model.pt"
METRICS_CSV = "metrics.csv"


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path | None
    best_epoch: int
    epochs_run: int
    val_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    test: Any = None  # EvalResult on held-out clips (cross-validation folds)


def to_channels_last(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Store every convolution's weights channels-last, in place.

    Per layer, because ``model.to(memory_format=torch.channels_last)`` fails on the 5-D weights
    of the video ResNets' 3-D convolutions, which take ``channels_last_3d`` instead. oneDNN on
    the CPU and cuDNN on the GPU both run faster in this layout (`lungus bench train`).
    """
    if torch.device(device).type == "cpu":
        for name, module in model.named_modules():
            if _corrupts_channels_last_on_cpu(module):
                raise LungUSError(
                    f"channels_last: true is unsafe for this model on the CPU: layer {name} is a strided 1x1 "
                    f"convolution with {module.in_channels} input channels, whose channels-last backward pass "
                    "corrupts memory in oneDNN; widen the model (width >= 16) or set channels_last: false")
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
        elif isinstance(module, nn.Conv3d):
            module.to(memory_format=torch.channels_last_3d)
    return model


def _corrupts_channels_last_on_cpu(module: nn.Module) -> bool:
    # oneDNN issue 6035: the jit 1x1 kernel's weight gradient writes past its workspace when the
    # input is NHWC, the stride is above 1 and there are fewer input channels than the ISA's
    # block (8 with AVX2, where torch 2.14.1 aborts on a corrupted heap for 2-7 channels; 16 with
    # AVX-512, where it can also return wrong gradients without crashing). 3x3 and 3-D are fine.
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride != (1, 1)
            and module.in_channels < 16)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63 - 1)


def parameter_groups(model: nn.Module, weight_decay: float, layer_lr_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW parameter groups, each with its ``lr_scale`` (of the run's lr) and ``layer``.

    No weight decay on norms and biases: decaying them only fights the normalisation. With
    ``layer_lr_decay`` F < 1 (layer-wise learning rates for fine-tuning, as BEiT and ULMFiT do),
    the model's ``layer_groups()`` (input first) set the rates: the last group (the head) learns
    at scale 1, the one before it at F, the one before that at F², and so on back to the first
    stage, so a pretrained encoder's early, general layers move least.
    """
    model = unwrap(model)
    if layer_lr_decay == 1:
        layers = [("all", 1.0, list(model.parameters()))]
    else:
        layer_groups = getattr(model, "layer_groups", None)
        if layer_groups is None:
            raise LungUSError(f"layer_lr_decay needs a model whose layers are ordered for it (frame_cnn); "
                              f"{type(model).__name__} is not: use layer_lr_decay 1")
        ordered = layer_groups()
        layers = [(f"layer{index}", layer_lr_decay ** (len(ordered) - 1 - index),
                   [p for module in group for p in module.parameters()]) for index, group in enumerate(ordered)]
        covered = {id(p) for _, _, params in layers for p in params}
        left_out = [name for name, p in model.named_parameters() if id(p) not in covered]
        if left_out:
            raise LungUSError(f"{type(model).__name__}.layer_groups() leaves out {left_out[0]}; please report this")
    groups = []
    for layer, scale, params in layers:
        trainable = [p for p in params if p.requires_grad]
        for decay, chosen in ((weight_decay, [p for p in trainable if p.ndim > 1]),
                              (0.0, [p for p in trainable if p.ndim <= 1])):
            if chosen:
                groups.append({"params": chosen, "weight_decay": decay, "lr_scale": scale, "layer": layer})
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig | PretrainConfig, steps_per_epoch: int, layer_lr_decay: float = 1.0):
    """AdamW over :func:`parameter_groups` and the learning-rate schedule (``config``'s lr, weight_decay,
    epochs and schedule)."""
    groups = parameter_groups(model, config.weight_decay, layer_lr_decay)
    rates = [config.lr * group["lr_scale"] for group in groups]
    for group, rate in zip(groups, rates):
        group["lr"] = rate
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    total_steps = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=rates, total_steps=total_steps,
                                                        pct_start=0.3)
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return optimizer, scheduler


def train_one_epoch(model, task, criterion, optimizer, scheduler, loader, device, config, epoch, progress_bar,
                    on_batch: Callable[[int], None] | None = None) -> float:
    """One pass over ``loader``; returns the mean loss. ``on_batch(done)`` after each batch."""
    model.train()
    total, count = 0.0, 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (config.amp and device.type == "cuda") else None
    for done, batch in enumerate(loader, start=1):
        optimizer.zero_grad(set_to_none=True)
        if autocast is not None:
            with autocast:
                loss = task.loss(model, batch, criterion, device)
        else:
            loss = task.loss(model, batch, criterion, device)
        if not torch.isfinite(loss):
            raise LungUSError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower --lr")
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        batch_size = next(iter(batch.values())).shape[0]
        total += loss.item() * batch_size
        count += batch_size
        if progress_bar is not None:
            progress_bar.update(1)
            progress_bar.set_postfix(loss=f"{total / count:.4f}")
        if on_batch is not None:
            on_batch(done)
    return total / max(count, 1)


def evaluate(model, task, dataset, device, context: DistributedContext, n_boot: int = 0):
    """Each rank predicts its share of the clips; rank 0's summary is everyone's."""
    model.eval()
    indices = list(range(context.rank, len(dataset), context.world_size))
    if context.is_main:  # a segmenter's validation takes a while after each epoch's batches
        from lungus.progress_lines import track

        indices = track(indices, "validate")
    mine = task.evaluate(unwrap(model), dataset, device, indices).predictions
    return task.summarise(gather_objects(mine, context), n_boot=n_boot)


class RunLogger:
    """metrics.csv (rewritten whole each epoch, so a resumed run's file is exact) and TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.tensorboard = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is an optional extra
                self.tensorboard = None

    def log(self, history: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        columns = list(dict.fromkeys(key for row in history for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.run_dir / METRICS_CSV, buffer.getvalue())
        if self.tensorboard is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tensorboard.add_scalar(key.replace("val_", "val/").replace("train_", "train/"), value,
                                                row["epoch"])
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def scalar_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("n_")}


def fit(config: TrainConfig, *, progress: Progress | None = None, log: Callable[[str], None] = print,
        resume: bool = False, test_rows: list[int] | None = None,
        context: DistributedContext | None = None) -> TrainResult:
    """Train one model as ``config`` says; write RUN/model.pt, metrics.csv, checkpoint.pt.

    ``test_rows`` (manifest rows) are kept out of training and validation and scored
    with the final model (cross-validation uses this for its held-out fold). Under
    torchrun the process group is joined here unless the caller passes its ``context``.
    ``progress(epochs done, epochs, what)`` (lungus.progress) hears after every epoch and a few
    times inside one (`lungus train --progress-lines` prints it; the Slicer modules show it).
    """
    with run_context(config, context) as (device, context):
        if not context.is_main:
            log, progress = (lambda _m: None), None
        return _fit(config, device, context, progress, log, resume, test_rows)


@contextlib.contextmanager
def run_context(config: TrainConfig, context: DistributedContext | None = None):
    """(device, context) for work on ``config``: this process's GPU under torchrun; the process
    group is joined (and left after) here unless the caller passes its own ``context``."""
    own_context = context is None
    device = resolve_device(config.device)
    if own_context:
        context = init_distributed(device)
    if context.enabled and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    try:
        yield device, context
    finally:
        if own_context:
            shutdown_distributed(context)


def _fit(config, device, context, progress, log, resume, test_rows) -> TrainResult:
    """The run as a table of contents: each step below is one function."""
    from lungus.train.setup import prepare_run

    if config.threads:
        torch.set_num_threads(config.threads)
    checkpoint_path = open_run_folder(config, context, resume)
    torch.manual_seed(config.seed)
    run = prepare_run(config, test_rows=test_rows, log=log)
    model = place_model(run.model, config, device, context)
    sampler, loader = training_loader(run.train_set, config, device, context)
    optimizer, scheduler = build_optimizer(model, config, len(loader), config.layer_lr_decay)
    state = TrainingState()
    if resume:
        state = _resume(checkpoint_path, config, model, optimizer, scheduler)
        log(f"resuming at epoch {state.epoch + 1} of {config.epochs}")
    epochs = _EpochRunner(config, run, model, run.criterion.to(device), optimizer, scheduler, sampler, loader,
                          device, context, checkpoint_path, progress, log)
    state = epochs.train(state)
    final, best_epoch = _best_model(model, state)
    check_replicas(final, context, config.run_dir)
    test_result = None
    if run.test_set is not None and len(run.test_set):  # cross-validation's held-out fold
        test_result = evaluate(final, run.task, run.test_set, device, context)
    operating_point = validation_operating_point(final, run, device, context, log)
    model_path = _save_model(final, run, config, state, best_epoch, context, progress, log, operating_point)
    return TrainResult(config.run_dir, model_path, best_epoch, len(state.history), state.best_metrics,
                       state.history, test_result)


@dataclass
class TrainingState:
    """What a checkpoint keeps besides the model and optimiser: the epochs done and the best so far."""

    epoch: int = 0  # epochs done
    history: list[dict[str, Any]] = field(default_factory=list)
    best_model: dict[str, Any] | None = None  # state dict of the best validation epoch
    best_score: float = -math.inf
    best_metrics: dict[str, Any] = field(default_factory=dict)


def open_run_folder(config: TrainConfig | PretrainConfig, context: DistributedContext, resume: bool) -> Path:
    """Make RUN/ and return its checkpoint path; a checkpoint there needs ``resume``."""
    run_dir = config.run_dir
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if not resume and context.is_main and checkpoint_path.exists():
        raise LungUSError("this run folder already holds a checkpoint: pass --resume to continue it, or choose a "
                          "new --out", run_dir)
    return checkpoint_path


def place_model(model: nn.Module, config: TrainConfig | PretrainConfig, device: torch.device,
                context: DistributedContext) -> nn.Module:
    """The model on ``device``, channels-last if asked, wrapped for DDP under torchrun."""
    model = model.to(device)
    if config.channels_last:
        to_channels_last(model, device)
    if context.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def training_loader(train_set, config: TrainConfig | PretrainConfig, device: torch.device,
                    context: DistributedContext) -> tuple[DistributedSampler, DataLoader]:
    """This rank's shuffled share of the training clips (seeded per epoch by ``sampler.set_epoch``)."""
    sampler = DistributedSampler(train_set, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=True, seed=config.seed, drop_last=False)
    # Batches of one break BatchNorm; dropping a last lone sample costs nothing.
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        drop_last=len(train_set) // context.world_size % config.batch_size == 1,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    return sampler, loader


def _resume(checkpoint_path: Path, config: TrainConfig, model: nn.Module, optimizer, scheduler) -> TrainingState:
    """Load RUN/checkpoint.pt into the model, optimiser and scheduler if it was written with ``config``'s
    settings; its TrainingState."""
    state = resume_from_checkpoint(checkpoint_path, config, unwrap(model), optimizer, scheduler)
    return TrainingState(state["epoch"], state["history"], state["best_model"], state["best_score"],
                         state["best_metrics"])


@dataclass
class _EpochRunner:
    """The epochs from a TrainingState on: train, validate, keep the best, checkpoint, report."""

    config: TrainConfig
    prepared: PreparedRun
    model: nn.Module
    criterion: nn.Module
    optimizer: Any
    scheduler: Any
    sampler: DistributedSampler
    loader: DataLoader
    device: torch.device
    context: DistributedContext
    checkpoint_path: Path
    progress: Progress | None
    log: Callable[[str], None]

    def train(self, state: TrainingState) -> TrainingState:
        config = self.config
        logger = RunLogger(config.run_dir, self.context.is_main)
        progress_bar = self._progress_bar(state.epoch)
        try:
            for epoch in range(state.epoch, config.epochs):
                if _stale_epochs(state.history) > (config.patience if config.patience is not None else math.inf):
                    self.log(f"early stop: no validation improvement for {config.patience} epochs")
                    break
                row = self._epoch(epoch, state, progress_bar)
                state.history.append(row)
                state.epoch = epoch + 1
                logger.log(state.history)
                if self.context.is_main:
                    save_checkpoint(self.checkpoint_path, self._checkpoint(state))
                self.log(epoch_line(row, config.epochs))
                if self.progress is not None:
                    self.progress(epoch + 1, config.epochs, epoch_line(row, config.epochs))
                # Every rank must take the same early-stopping branch.
                state.history = broadcast_object(state.history, self.context)
        finally:
            if progress_bar is not None:
                progress_bar.close()
            logger.close()
        return state

    def _progress_bar(self, start_epoch: int):
        if not self.context.is_main:
            return None
        from tqdm.auto import tqdm

        # disable=None: a bar in a terminal only, not in a log file or a pipe (progress lines are for programs).
        batches = len(self.loader)
        return tqdm(total=self.config.epochs * batches, initial=start_epoch * batches,
                    desc=f"train {self.config.task}", unit="batch", dynamic_ncols=True, leave=False, disable=None)

    def _epoch(self, epoch: int, state: TrainingState, progress_bar) -> dict[str, Any]:
        """Train one epoch and validate; update ``state``'s best; the epoch's metrics.csv row."""
        config, context, run = self.config, self.context, self.prepared
        started = time.time()
        self.sampler.set_epoch(epoch)
        run.train_set.set_epoch(epoch)
        torch.manual_seed(epoch_seed(config.seed, epoch, context.rank))
        train_loss = train_one_epoch(self.model, run.task, self.criterion, self.optimizer, self.scheduler,
                                     self.loader, self.device, config, epoch, progress_bar,
                                     batch_reporter(self.progress, epoch, config.epochs, len(self.loader)))
        average_buffers(unwrap(self.model), context)
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": self.scheduler.get_last_lr()[0], "train_loss": train_loss}
        if run.val_set is not None and len(run.val_set):
            result = evaluate(self.model, run.task, run.val_set, self.device, context)
            row.update(scalar_metrics(result.metrics, "val_"))
            if result.score > state.best_score:
                state.best_score, state.best_metrics = result.score, result.metrics
                state.best_model = copy.deepcopy(unwrap(self.model).state_dict())
            row["val_score"] = result.score
        row["seconds"] = round(time.time() - started, 2)
        return row

    def _checkpoint(self, state: TrainingState) -> dict[str, Any]:
        return {
            "config": json.loads(json.dumps(self.config.to_dict())),
            "epoch": state.epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": state.history,
            "best_model": state.best_model,
            "best_score": state.best_score,
            "best_metrics": json.loads(json.dumps(state.best_metrics, default=float)),
        }


def _best_model(model: nn.Module, state: TrainingState) -> tuple[nn.Module, int]:
    """The unwrapped model with the best validation epoch's weights (the last epoch's without
    validation), and that epoch."""
    final = unwrap(model)
    if state.best_model is None:
        return final, len(state.history)
    final.load_state_dict(state.best_model)
    return final, int(max(state.history, key=lambda r: r.get("val_score", -math.inf))["epoch"])


def validation_operating_point(model: nn.Module, run: PreparedRun, device: torch.device,
                               context: DistributedContext, log: Callable[[str], None]) -> OperatingPoint | None:
    """A classifier's operating point, chosen on its validation clips by the run's threshold rule
    and calibration (lungus.evaluate.operating_points); None for a segmenter, or without
    validation clips of both kinds (the card then decides by the largest probability)."""
    from lungus.data.labels.tasks import SEG_TASK
    from lungus.train.operating_points import choose_on_predictions

    config = run.config
    if config.task == SEG_TASK or (run.test_set is not None and len(run.test_set)):
        return None  # a cross-validation fold's is chosen on the other folds' predictions (train.cv)
    if run.val_set is None or not len(run.val_set):
        log("no validation clips: the card decides by the largest probability (P = 0.5 for two classes); "
            "keep validation patients (--val-fraction) or cross-validate (--folds) to choose a threshold")
        return None
    predictions = evaluate(model, run.task, run.val_set, device, context).predictions
    patients = len({p["patient"] for p in predictions})
    return choose_on_predictions(predictions, config, f"validation split: {len(predictions)} clips of "
                                 f"{patients} patients", log)


def _save_model(final: nn.Module, run: PreparedRun, config: TrainConfig, state: TrainingState, best_epoch: int,
                context: DistributedContext, progress: Progress | None,
                log: Callable[[str], None], operating_point: OperatingPoint | None = None) -> Path | None:
    """RUN/model.pt with its card (rank 0 only; None elsewhere)."""
    if not context.is_main:
        return None
    model_path = run.save_model(final, config.run_dir / MODEL_NAME, state.best_metrics, best_epoch, state.history,
                                operating_point)
    log(f"saved {model_path} (best epoch {best_epoch})")
    if progress is not None:  # also when early stopping left epochs out
        progress(config.epochs, config.epochs, f"saved {model_path.name} (best epoch {best_epoch})")
    return model_path


def check_replicas(final: nn.Module, context: DistributedContext, run_dir: Path) -> None:
    """Under torchrun: every rank's weights must be the same (RUN/replicas.json keeps their checksums)."""
    if not context.enabled:
        return
    checksums = replica_checksums(final, context)
    if context.is_main:
        atomic_write_text(run_dir / "replicas.json", json.dumps({"world_size": context.world_size,
                                                                 "checksums": checksums}, indent=2))
    if len(set(checksums)) != 1:
        raise LungUSError("DDP replicas diverged (their weights differ); please report this", run_dir)


def batch_reporter(progress: Progress | None, epoch: int, epochs: int,
                   batches: int) -> Callable[[int], None] | None:
    """on_batch for train_one_epoch: tells ``progress`` of the batches done, BATCH_REPORTS_PER_EPOCH
    times an epoch at most (the epoch's end is reported with its metrics)."""
    if progress is None:
        return None
    every = max(1, batches // BATCH_REPORTS_PER_EPOCH)

    def report(done: int) -> None:
        if done % every == 0 and done < batches:
            progress(epoch + done / batches, epochs, f"epoch {epoch + 1}/{epochs}: batch {done}/{batches}")

    return report


def _stale_epochs(history: list[dict[str, Any]]) -> int:
    scores = [row.get("val_score") for row in history if row.get("val_score") is not None]
    if not scores:
        return 0
    best = max(range(len(scores)), key=lambda i: scores[i])
    return len(scores) - 1 - best


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    for key in ("val_auc", "val_kappa_quadratic", "val_accuracy", "val_dice_b_line", "val_count_mae"):
        if key in row:
            parts.append(f"{key[4:]} {row[key]:.3f}")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)
