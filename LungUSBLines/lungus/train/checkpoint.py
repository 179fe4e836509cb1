"""Per-epoch training checkpoints, written atomically so a kill never leaves half a file.

A checkpoint holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``. Random state is not stored: every random draw in
training derives from (seed, epoch, sample), so resuming at an epoch boundary replays
exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lungus.atomic import atomic_path
from lungus.errors import LungUSError

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1
# Settings that say where a run lives or how fast it goes, not what it computes: every random
# draw derives from (seed, epoch, sample), so a resume may change them.
PLACEMENT_SETTINGS = frozenset({"out", "workers", "threads", "cache_dir"})


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    with atomic_path(path) as temporary:
        torch.save({"checkpoint_version": CHECKPOINT_VERSION, **state}, temporary)
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LungUSError("no checkpoint to resume from; run without --resume first", path) from None
    except Exception as error:  # unpickling errors come in many types
        raise LungUSError(f"not a readable lungus checkpoint ({type(error).__name__})", path) from None
    if not isinstance(state, dict) or state.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise LungUSError(f"checkpoint format is not version {CHECKPOINT_VERSION}; start a new run", path)
    return state


def settings_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings a resume would change, as ``name: saved -> current``, placement settings aside."""
    names = sorted((saved.keys() | current.keys()) - PLACEMENT_SETTINGS)
    return [f"{name}: {saved.get(name)!r} -> {current.get(name)!r}"
            for name in names if saved.get(name) != current.get(name)]


def resume_from_checkpoint(path: Path, config: Any, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load checkpoint ``path`` into the (unwrapped) model, the optimiser and the scheduler if it was written
    with ``config``'s settings (a TrainConfig or a PretrainConfig); the checkpoint's other entries."""
    state = load_checkpoint(path)
    # A setting added after the checkpoint was written had its default then.
    saved = {**type(config).defaults(), **state["config"]}
    changed = settings_differences(saved, json.loads(json.dumps(config.to_dict())))
    if changed:
        raise LungUSError(f"the checkpoint was written with other settings ({'; '.join(changed)}); "
                          "resume with the same ones", path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state
