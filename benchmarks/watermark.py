"""The recommender watermark: is it still found after quantisation and fine-tuning, is it absent from
an independent model, and what does it cost in NDCG@10?

On a mid-size ShopSim (1,500 items, 4,000 users, 80k events), under the leave-one-out protocol of
``recdrill eval`` (fit on the test fold's training data, NDCG@10 on each user's last item):

    (a) plain SASRec, seed 0                   -- the baseline for the NDCG cost
    (b) the same model, same seed and budget, with ``watermark=True``
    (c) (b) with int8 dynamic quantisation (``torch.ao.quantization.quantize_dynamic``) of every
        ``nn.Linear`` (attention projections and feed-forward layers); the item, position,
        attribute and price embeddings stay float32, as dynamic quantisation leaves embeddings alone
    (d) (b) fine-tuned for a few epochs on a second, twice-as-large sample of the same shop (same
        catalogue, fresh user histories), without the watermark rows: the "stolen and retrained" case
    (e) an independent model: seed 1, no watermark

For (b)-(e) it runs the ownership test of :mod:`recdrill.models.watermark` (p-value, owned, hits of
the 288 secret next items in the top 10) and reports NDCG@10/HR@10 of each, the watermark's cost as
the ratio and the difference of (b) against (a), and fit times. The int8 copy (c) is measured in
memory: ``state.npz`` holds float arrays only. Writes ``benchmarks/results/watermark.json``
(``results/quick/`` with ``--quick``, so a smoke run never overwrites the real figures).

    .venv/bin/python benchmarks/watermark.py           # the real run (three 2-minute fits: ~7 minutes)
    .venv/bin/python benchmarks/watermark.py --quick   # a smoke run on a tiny shop (seconds)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import QUICK_HELP, quick_path, run_main
from recdrill.data.dataset import Dataset
from recdrill.data.shopsim import ShopSim
from recdrill.data.splits import leave_one_out
from recdrill.eval.evaluate import evaluate
from recdrill.models.sasrec.batches import training_batches
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.models.sasrec.loss import NextItemLoss
from recdrill.models.watermark import ALPHA, COPIES_PER_EPOCH, Watermark, ownership_test

RESULTS = Path(__file__).resolve().parent / "results" / "watermark.json"
# A fixed, public secret so that runs are repeatable; real owners keep theirs in RECDRILL_HOME/keys.
BENCHMARK_SECRET = b"recdrill-benchmark-watermark-secret"

FULL: dict[str, Any] = {
    "shop": {"n_items": 1500, "n_users": 4000, "n_events": 80_000, "seed": 0},
    "sasrec": {"max_minutes": 2.0, "max_epochs": 40, "patience": 5, "device": "cpu"},
    "fine_tune_epochs": 3,
}
QUICK: dict[str, Any] = {
    "shop": {"n_items": 300, "n_users": 600, "n_events": 12_000, "seed": 0},
    "sasrec": {
        **{"dim": 32, "blocks": 1, "heads": 2, "max_len": 20, "max_epochs": 3, "patience": 3},
        **{"max_minutes": 0.1, "device": "cpu"},
    },
    "fine_tune_epochs": 1,
}


def fit(
    data: Dataset, params: dict[str, Any], secret: bytes, *, seed: int, watermark: bool
) -> tuple[SASRecRecommender, float]:
    model = SASRecRecommender(**params, seed=seed, watermark=watermark)
    model.watermark_secret = secret
    started = time.perf_counter()
    model.fit(data)
    return model, time.perf_counter() - started


def quantised(model: SASRecRecommender) -> SASRecRecommender:
    """A copy whose Linear layers compute in int8 (weights stored int8, activations quantised per call)."""
    copied = copy.deepcopy(model)
    with warnings.catch_warnings():  # torch 2.9+ deprecates torch.ao.quantization in favour of torchao
        warnings.simplefilter("ignore")
        copied.net_ = torch.ao.quantization.quantize_dynamic(
            copied.net_, {torch.nn.Linear}, dtype=torch.qint8
        )
    return copied


def fine_tuned(
    model: SASRecRecommender, data: Dataset, epochs: int, seed: int
) -> tuple[SASRecRecommender, float]:
    """A copy trained ``epochs`` more epochs on ``data`` at the model's own learning rate (constant)."""
    copied = copy.deepcopy(model)
    net = copied.net_
    loss_fn = NextItemLoss(net, copied.negatives)
    optimizer = torch.optim.AdamW(net.parameters(), lr=copied.lr, weight_decay=copied.weight_decay)
    rng = np.random.default_rng(seed)
    sequences = data.sequences()
    started = time.perf_counter()
    net.train()
    for _ in range(epochs):
        for inputs, targets in training_batches(sequences, copied.batch_size, copied.max_len, rng):
            loss = loss_fn(inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), copied.grad_clip)
            optimizer.step()
    net.eval()
    return copied, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = parser.parse_args()
    setup = QUICK if args.quick else FULL
    secret = BENCHMARK_SECRET

    shop = setup["shop"]
    data = ShopSim(**shop).generate()
    more = ShopSim(**{**shop, "n_users": 2 * shop["n_users"], "n_events": 2 * shop["n_events"]}).generate()
    if more.fingerprint() != data.fingerprint():
        raise SystemExit("the fine-tuning sample does not share the catalogue of the training data")
    split = leave_one_out(data)
    train_data = split.test.fit_data
    mark = Watermark.from_secret(secret, data.n_items)
    params = setup["sasrec"]

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    rows: dict[str, dict[str, Any]] = {}

    def measure(name: str, model: SASRecRecommender, **extra: Any) -> None:
        report = evaluate(model, split.test, model_name=name)
        test = ownership_test(model, mark).to_dict()
        rows[name] = {**test, "NDCG@10": report.metrics["NDCG@10"], "HR@10": report.metrics["HR@10"], **extra}
        log(f"{name}: p={test['p_value']:.3g} owned={test['owned']} hits={test['hits']} "
            f"rank_p={test['rank_p_value']:.3g} median_rank={test['median_rank']:.0f} "
            f"NDCG@10={report.metrics['NDCG@10']:.4f}")  # fmt: skip

    log("(a) plain")
    plain, plain_s = fit(train_data, params, secret, seed=0, watermark=False)
    measure("a_plain", plain, fit_seconds=plain_s, epochs=len(plain.training_log_["epochs"]))
    log("(b) watermarked")
    marked, marked_s = fit(train_data, params, secret, seed=0, watermark=True)
    measure("b_watermarked", marked, fit_seconds=marked_s, epochs=len(marked.training_log_["epochs"]))
    log("(c) int8")
    measure("c_int8", quantised(marked), quantised_modules="every nn.Linear (embeddings stay float32)")
    log("(d) fine-tuned")
    tuned, tuned_s = fine_tuned(marked, more, setup["fine_tune_epochs"], seed=0)
    measure("d_fine_tuned", tuned, fine_tune_seconds=tuned_s, fine_tune_epochs=setup["fine_tune_epochs"])
    log("(e) independent")
    independent, independent_s = fit(train_data, params, secret, seed=1, watermark=False)
    measure("e_independent", independent, fit_seconds=independent_s)

    a, b = rows["a_plain"]["NDCG@10"], rows["b_watermarked"]["NDCG@10"]
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "data": {
            **shop,
            "fine_tune_sample": {"n_users": 2 * shop["n_users"], "n_events": 2 * shop["n_events"]},
        },
        "protocol": "leave-one-out; fit on test-fold training data; NDCG@10 over all items, seen excluded",
        "sasrec_params": params,
        "watermark": {
            "sequences": len(mark.sequences),
            "sequence_length": int(mark.sequences.lengths[0]),
            "queries": int(mark.sequences.lengths.sum() - len(mark.sequences)),
            "copies_per_epoch": COPIES_PER_EPOCH,
            "top_k": 10,
            "alpha": ALPHA,
            "null_hit_rate": 10 / data.n_items,
        },
        "models": rows,
        "ndcg10_cost": {
            "watermarked_vs_plain_ratio": b / a if a else None,
            "difference": b - a,
            # The same comparison between two plain models that differ only in seed: the noise floor.
            "seed_noise_independent_minus_plain": rows["e_independent"]["NDCG@10"] - a,
        },
        "fit_time_ratio_watermarked_vs_plain": marked_s / plain_s,
        "acceptance": {
            "watermarked_owned": rows["b_watermarked"]["owned"],
            "int8_owned": rows["c_int8"]["owned"],
            "fine_tuned_owned": rows["d_fine_tuned"]["owned"],
            "independent_not_owned": not rows["e_independent"]["owned"],
        },
    }
    out = quick_path(RESULTS.name) if args.quick else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"ndcg10_cost": result["ndcg10_cost"], "acceptance": result["acceptance"]}, indent=2))


if __name__ == "__main__":
    run_main(main)
