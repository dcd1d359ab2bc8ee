"""Run under torchrun by test_distributed.py: train a small SASRec and record what this rank ended with."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from recdrill.data.shopsim import ShopSim
from recdrill.models.sasrec.estimator import SASRecRecommender


def main(out: Path) -> None:
    shop = ShopSim(n_items=200, n_users=120, n_events=3000, seed=4).generate()
    model = SASRecRecommender(
        dim=16, blocks=1, heads=2, max_len=10, batch_size=16, max_epochs=2, patience=5, seed=3
    )
    model.fit(shop)
    weights = torch.cat([p.detach().flatten() for p in model.net_.parameters()]).numpy()
    record = {
        "rank": dist.get_rank(),
        "world": dist.get_world_size(),
        "digest": hashlib.sha256(weights.tobytes()).hexdigest(),
        "epochs": len(model.training_log_["epochs"]),
    }
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
