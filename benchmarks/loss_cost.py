"""What one training step's loss costs: full softmax vs sampled softmax vs full softmax in bfloat16.

Measured on Beauty-sized shapes (12,101 items, 64 dimensions, 1,500 non-padded positions, about one
batch of 256 users) in one process, forward plus backward, best of 3 rounds of 10 steps.
Writes benchmarks/results/loss_cost.json.

    .venv/bin/python benchmarks/loss_cost.py
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import run_main

OUT = Path(__file__).resolve().parent / "results" / "loss_cost.json"
ITEMS, DIM, POSITIONS = 12_101, 64, 1_500


def timed(step: Callable[[], torch.Tensor], rounds: int = 3, steps: int = 10) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(steps):
            step().backward()
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def main() -> None:
    torch.manual_seed(0)
    states = torch.randn(POSITIONS, DIM, requires_grad=True)
    table = torch.randn(ITEMS, DIM, requires_grad=True)
    targets = torch.randint(0, ITEMS, (POSITIONS,))

    def full() -> torch.Tensor:
        return F.cross_entropy(states @ table.T, targets)

    def full_bf16() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.cross_entropy(states @ table.T, targets)

    def sampled(negatives: int) -> Callable[[], torch.Tensor]:
        def step() -> torch.Tensor:
            drawn = torch.randint(0, ITEMS, (negatives,))
            positive = (states * table[targets]).sum(-1, keepdim=True)
            logits = torch.cat([positive, states @ table[drawn].T], dim=1)
            return F.cross_entropy(logits, torch.zeros(POSITIONS, dtype=torch.long))

        return step

    seconds = {"full": timed(full), "full_bf16": timed(full_bf16)}
    for negatives in (256, 1024, 4096):
        seconds[f"sampled_{negatives}"] = timed(sampled(negatives))
    result = {
        "machine": platform.platform(),
        "threads": torch.get_num_threads(),
        "shape": {"items": ITEMS, "dim": DIM, "positions": POSITIONS},
        "seconds_per_step": seconds,
        "speedup_vs_full": {name: seconds["full"] / value for name, value in seconds.items()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    for name, value in seconds.items():
        print(f"{name:<14}{value * 1000:8.1f} ms/step  {seconds['full'] / value:5.1f}x")


if __name__ == "__main__":
    run_main(main)
