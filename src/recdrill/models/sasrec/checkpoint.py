"""Resumable training: everything an interrupted ``fit`` needs to go on exactly where it stopped.

A checkpoint holds the network, optimiser and schedule states, both random generators (numpy's for
batches and augmentation, torch's for dropout), the early-stopping bookkeeping and the time already
spent. Resuming from it gives the same weights as a run that was never interrupted. It is written
after every epoch to a temporary file and renamed into place, so a process killed mid-write leaves
the previous checkpoint whole. A checkpoint from other settings or other data is ignored (training
starts afresh, with a warning); one that cannot be read is an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recdrill.errors import ModelFileError

log = logging.getLogger(__name__)


@dataclass
class TrainingProgress:
    """The early-stopping loop's bookkeeping after ``epoch`` finished epochs."""

    epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = 0
    stale: int = 0
    horizon_steps: int = 0
    reserve_s: float = 0.0
    elapsed_s: float = 0.0
    done: bool = False  # the epoch loop has decided to stop (only the refit may remain)
    log: list[dict[str, float]] = field(default_factory=list)


def run_key(params: dict[str, Any], data_digest: str) -> str:
    """What a checkpoint must match to be resumed: the training settings and the data."""
    relevant = {k: v for k, v in sorted(params.items()) if k not in ("verbose", "device")}
    return hashlib.sha256(json.dumps([relevant, data_digest], default=str).encode()).hexdigest()


def save_checkpoint(
    path: Path,
    key: str,
    progress: TrainingProgress,
    modules: dict[str, Any],
    rng: np.random.Generator,
    best_weights: dict[str, torch.Tensor] | None,
) -> None:
    """Write atomically: ``modules`` maps names to objects with ``state_dict`` (net, optimiser, schedule)."""
    payload = {
        "key": key,
        "progress": asdict(progress),
        "states": {name: module.state_dict() for name, module in modules.items()},
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
        "best_weights": best_weights,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(
    path: Path, key: str, modules: dict[str, Any], rng: np.random.Generator
) -> tuple[TrainingProgress, dict[str, torch.Tensor] | None] | None:
    """Restore ``modules`` and ``rng`` in place; ``None`` when there is nothing to resume."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["key"] != key:
            log.warning("%s was written for other settings or data: training starts afresh", path)
            return None
        for name, module in modules.items():
            module.load_state_dict(payload["states"][name])
        rng.bit_generator.state = json.loads(payload["numpy_rng"])
        torch.set_rng_state(payload["torch_rng"])
        progress = TrainingProgress(**payload["progress"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelFileError(path, f"cannot resume from this training checkpoint ({exc})") from exc
    best: dict[str, torch.Tensor] | None = payload["best_weights"]
    return progress, best
