"""One SASRec training run on a dataset with given settings: fit on the test fold's training data
(early stopping on validation), evaluate on test, append the result to
benchmarks/results/sasrec_probe.jsonl. Used to compare settings before a full benchmarks/quality.py run.

    .venv/bin/python benchmarks/sasrec_probe.py ../shared/datasets/amazon/Beauty.txt full-ce \
        '{"max_minutes": 12}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from harness import run_main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.eval.evaluate import evaluate
from recdrill.models.sasrec.estimator import SASRecRecommender

OUT = Path(__file__).resolve().parent / "results" / "sasrec_probe.jsonl"


def main(path: str, tag: str, settings: str) -> None:
    params = json.loads(settings)
    split = leave_one_out(load_dataset(path))
    model = SASRecRecommender(**params)
    started = time.perf_counter()
    model.fit(split.test.fit_data)
    fit_seconds = time.perf_counter() - started
    report = evaluate(model, split.test)
    result = {
        "tag": tag,
        "data": Path(path).name,
        "params": params,
        "fit_seconds": fit_seconds,
        "epochs": len(model.training_log_["epochs"]),
        "best_epoch": model.training_log_["best_epoch"],
        "best_val_ndcg10": model.training_log_["best_val_ndcg10"],
        "test": report.metrics,
        "curve": [
            (e["epoch"], round(e["seconds"]), round(e["val_ndcg10"], 4))
            for e in model.training_log_["epochs"]
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps({k: result[k] for k in ("tag", "epochs", "best_epoch", "best_val_ndcg10", "test")}))


if __name__ == "__main__":
    run_main(lambda: main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "{}"))
