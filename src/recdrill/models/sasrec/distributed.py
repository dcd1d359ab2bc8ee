"""Data-parallel training through ``torchrun`` (gloo on CPU, NCCL on GPU), or none at all.

Launched by ``torchrun --nproc_per_node N -m recdrill train ...``, every process trains the same
model on its share of each epoch's batches and ``DistributedDataParallel`` averages gradients, so
all ranks hold identical weights after every step. Without torchrun's variables nothing changes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def world_size() -> int:
    """How many processes train together (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def distribute(module: nn.Module, device: torch.device) -> tuple[nn.Module, int, int]:
    """``(module to train, rank, world size)``: wrapped in DDP when several processes train."""
    if world_size() <= 1:
        return module, 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return DistributedDataParallel(module, device_ids=[local]), dist.get_rank(), dist.get_world_size()
    return DistributedDataParallel(module), dist.get_rank(), dist.get_world_size()


def agree(flag: bool) -> bool:
    """True on every rank when it is true on any (a stop decision all ranks must share)."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def same_everywhere(value: float) -> float:
    """Rank 0's ``value`` on every rank (a setting all ranks must share, like a schedule length)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())
