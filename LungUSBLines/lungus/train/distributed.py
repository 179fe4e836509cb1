"""torchrun support: the same command runs on one process or many (DDP; gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group torchrun describes in the environment, if there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_distributed(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def average_buffers(model: nn.Module, context: DistributedContext) -> None:
    """Average float buffers (BatchNorm running statistics) over ranks.

    DDP keeps parameters equal on every rank, but each rank updates its BatchNorm
    statistics from its own shard; averaging them at the end of an epoch keeps the
    replicas identical, which checkpoints and the saved model rely on.
    """
    if not context.enabled:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer /= context.world_size


def gather_objects(items: list[Any], context: DistributedContext) -> list[Any]:
    """Concatenate each rank's list on every rank (rank order)."""
    if not context.enabled:
        return items
    gathered: list[list[Any]] = [[] for _ in range(context.world_size)]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def broadcast_object(value: Any, context: DistributedContext) -> Any:
    """Rank 0's value on every rank (e.g. an early-stopping decision)."""
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def state_checksum(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in state_dict order."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def replica_checksums(model: nn.Module, context: DistributedContext) -> list[str]:
    """Every rank's model checksum (rank order): they must all be equal after DDP training."""
    return gather_objects([state_checksum(model)], context)
