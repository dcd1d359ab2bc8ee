"""What one training step's loss costs: full softmax vs sampled softmax vs full softmax in bfloat16.

Measured on Beauty-sized shapes (12,101 items, 64 dimensions, 1,500 non-padded positions, about one
batch of 256 users) in one process, forward plus backward, best of 3 rounds of 10 steps.
Writes benchmarks/results/loss_cost.json.

    .venv/bin/python benchmarks/loss_cost.py
    .venv/bin/python benchmarks/loss_cost.py --quick   # small shapes, 1 round of 2 steps, results/quick/
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import QUICK_HELP, quick_path, run_main

OUT = Path(__file__).resolve().parent / "results" / "loss_cost.json"
FULL = {"items": 12_101, "dim": 64, "positions": 1_500, "rounds": 3, "steps": 10}
QUICK = {"items": 2_000, "dim": 64, "positions": 300, "rounds": 1, "steps": 2}


def timed(step: Callable[[], torch.Tensor], rounds: int = 3, steps: int = 10) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(steps):
            step().backward()
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    quick = parser.parse_args().quick
    plan = QUICK if quick else FULL
    items, dim, positions = plan["items"], plan["dim"], plan["positions"]
    torch.manual_seed(0)
    states = torch.randn(positions, dim, requires_grad=True)
    table = torch.randn(items, dim, requires_grad=True)
    targets = torch.randint(0, items, (positions,))

    def full() -> torch.Tensor:
        return F.cross_entropy(states @ table.T, targets)

    def full_bf16() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.cross_entropy(states @ table.T, targets)

    def sampled(negatives: int) -> Callable[[], torch.Tensor]:
        def step() -> torch.Tensor:
            drawn = torch.randint(0, items, (negatives,))
            positive = (states * table[targets]).sum(-1, keepdim=True)
            logits = torch.cat([positive, states @ table[drawn].T], dim=1)
            return F.cross_entropy(logits, torch.zeros(positions, dtype=torch.long))

        return step

    rounds, steps = plan["rounds"], plan["steps"]
    seconds = {"full": timed(full, rounds, steps), "full_bf16": timed(full_bf16, rounds, steps)}
    for negatives in (256, 1024, 4096):
        seconds[f"sampled_{negatives}"] = timed(sampled(negatives), rounds, steps)
    result = {
        "machine": platform.platform(),
        "threads": torch.get_num_threads(),
        "quick": quick,
        "shape": {"items": items, "dim": dim, "positions": positions},
        "seconds_per_step": seconds,
        "speedup_vs_full": {name: seconds["full"] / value for name, value in seconds.items()},
    }
    out = quick_path(OUT.name) if quick else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for name, value in seconds.items():
        print(f"{name:<14}{value * 1000:8.1f} ms/step  {seconds['full'] / value:5.1f}x")


if __name__ == "__main__":
    run_main(main)
