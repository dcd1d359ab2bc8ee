"""One SASRec training run on a dataset with given settings: fit on the test fold's training data
(early stopping on validation), evaluate on test, append the result to
benchmarks/results/sasrec_probe.jsonl. Used to compare settings before a full benchmarks/quality.py run.

    .venv/bin/python benchmarks/sasrec_probe.py ../shared/datasets/amazon/Beauty.txt full-ce \
        '{"max_minutes": 12}'
    .venv/bin/python benchmarks/sasrec_probe.py --quick   # a tiny shop, 3 s, into results/quick/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness import QUICK_SHOP, parse_args, quick_path, run_main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.eval.evaluate import evaluate
from recdrill.models.sasrec.estimator import SASRecRecommender

OUT = Path(__file__).resolve().parent / "results" / "sasrec_probe.jsonl"
QUICK = {
    "path": QUICK_SHOP, "tag": "quick", "settings": '{"max_minutes": 0.05, "max_epochs": 3}',
    "out": quick_path("sasrec_probe.jsonl"),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="the data (recdrill train --data): a file or shopsim:...")
    parser.add_argument("tag", nargs="?", help="the run's name in the results")
    parser.add_argument("settings", nargs="?", default="{}", help="SASRecRecommender settings as JSON")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parse_args(parser, QUICK)
    if args.path is None or args.tag is None:
        parser.error("the following arguments are required: path, tag")
    if args.out == QUICK["out"]:
        args.out.unlink(missing_ok=True)  # each quick run starts afresh
    probe(args.path, args.tag, args.settings, args.out)


def probe(path: str, tag: str, settings: str, out: Path) -> None:
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
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps({k: result[k] for k in ("tag", "epochs", "best_epoch", "best_val_ndcg10", "test")}))


if __name__ == "__main__":
    run_main(main)
