"""The Transformer as the primary tier of a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from recdrill.cli import main
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=300,n_users=200,n_events=4000"


def test_a_trained_sasrec_serves_as_the_primary_tier(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"dim": 16, "blocks": 1, "max_len": 10, "max_epochs": 2}))
    model = tmp_path / "model"
    assert (
        main(["train", "--data", DATA, "--model", "sasrec", "--params", str(params), "--out", str(model)])
        == 0
    )
    with ServerProcess(model, tmp_path / "state") as server, httpx.Client(base_url=server.url) as client:
        answers = [
            client.post("/v1/recommend", json={"user_id": f"U-{u:06d}", "k": 5}).json() for u in range(20)
        ]
    assert all(a["served_by"] == "primary" and a["model_version"].startswith("sasrec-") for a in answers)
    assert all(len(a["items"]) == 5 for a in answers)
    assert len({tuple(i["item_id"] for i in a["items"]) for a in answers}) > 1  # personalised, not one list
