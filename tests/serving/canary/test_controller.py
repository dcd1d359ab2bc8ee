"""Canary and shadow on a real server, with a real registry and replayed traffic that labels itself.

The registry (a temporary ``RECDRILL_HOME``, inherited by the server) holds three models of one
small shop: v1 ItemKNN (production, what the server starts on), v2 popularity (deliberately worse:
NDCG@10 about 0.035 against ItemKNN's 0.24 on this shop) and v3 ItemKNN with 50 neighbours instead
of 100 (as good as v1, different bytes, so a different version). The replayer posts each user's
true next item as a click after every answer (``feedback=True``): the labels the judge scores.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.splits import leave_one_out
from recdrill.drills.replayer import Replayer, ReplayPlan, RequestRecord
from recdrill.registry import Registry, Stage, init_keys
from recdrill.registry.keys import DATA_KEY_ENV, SIGNING_KEY_ENV
from recdrill.serving.runtime.local_process import ServerProcess
from tests.serving.test_app import metric

KEY = "canary-admin-key"
ADMIN = {"X-API-Key": KEY}
SHOP = "shopsim:n_items=300,n_users=400,n_events=8000"
# The judge in these tests: decide after 30 labels per arm, tolerate a 10% relative NDCG@10 drop,
# and a p99 three times the primary's (plus 5 ms): the CPU is shared, so latency is noisy here.
JUDGE = {"min_samples": 30, "max_ndcg_drop": 0.1, "max_p99_ratio": 3.0}
RATE, DURATION_S = 30.0, 20.0  # about 600 requests, each followed by its label
ROLLBACK_WITHIN = 300  # requests answered before the judge rolls the worse model back


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("canary-home")
    models = tmp_path_factory.mktemp("canary-models")
    (models / "knn50.json").write_text(json.dumps({"neighbours": 50}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(root))
        for name in (SIGNING_KEY_ENV, DATA_KEY_ENV, "RECDRILL_MODEL_VERSION", "RECDRILL_KEY_STORE"):
            patch.delenv(name, raising=False)
        init_keys(root)
        registry = Registry(root)
        for name, kind, params in (
            ("knn", "itemknn", []),
            ("pop", "pop", []),
            ("knn50", "itemknn", ["--params", str(models / "knn50.json")]),
        ):
            out = models / name
            assert main(["train", "--data", SHOP, "--model", kind, "--out", str(out), *params]) == 0
            registry.push(out)
        registry.promote("v1", Stage.PRODUCTION)
        yield root


@pytest.fixture(scope="module")
def server(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(home))
        patch.setenv("RECDRILL_MODEL_VERSION", "v1")
        state = tmp_path_factory.mktemp("canary-state")
        folder = Registry(home).materialise(
            "v1", tmp_path_factory.mktemp("canary-v1") / "v1"
        )  # the CLI's check
        with ServerProcess(folder, state, admin_key=KEY, deadline_ms=500) as running:
            yield running


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client
        client.delete("/admin/models/canary", headers=ADMIN)  # whatever a test left running


@pytest.fixture(scope="module")
def plan() -> ReplayPlan:
    return ReplayPlan.from_fold(leave_one_out(load_dataset(SHOP, seed=0)).test)


def start(client: httpx.Client, version: str, share: float, **extra: Any) -> httpx.Response:
    return client.post(
        "/admin/models/canary", json={"version": version, "share": share, **extra}, headers=ADMIN
    )


def status(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/admin/models/canary", headers=ADMIN)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def replay(server: ServerProcess, plan: ReplayPlan, seed: int = 7) -> list[RequestRecord]:
    replayer = Replayer(server.url, plan, timeout_s=10.0, feedback=True)
    records = asyncio.run(replayer.run(rate=RATE, duration_s=DURATION_S, seed=seed))
    return sorted(records, key=lambda r: r.scheduled_s)


def test_a_sticky_share_of_users_gets_the_candidate_and_keeps_it(
    api: httpx.Client, home: Path, plan: ReplayPlan
) -> None:
    started = start(api, "v3", 0.5, min_samples=100_000)
    assert started.status_code == 200, started.text
    assert started.json()["active"] and started.json()["mode"] == "canary"
    assert Registry(home).show("v3").stage is Stage.CANARY
    users = plan.user_ids[:200]
    seen: dict[str, set[str]] = {u: set() for u in users}
    for _ in range(2):
        for user in users:
            answer = api.post("/v1/recommend", json={"user_id": user})
            assert answer.status_code == 200 and answer.json()["served_by"] == "primary"
            seen[user].add(answer.json()["model_version"])
    assert all(len(versions) == 1 for versions in seen.values())  # one arm per user, every time
    share = sum(versions == {"v3"} for versions in seen.values()) / len(users)
    assert 0.38 <= share <= 0.62, share  # binomial(200, 0.5): 0.5 +- 3.4 standard deviations
    anonymous = api.post("/v1/recommend", json={"history": ["SKU-000001"]})
    assert anonymous.json()["model_version"] == "v1"  # no user id: nobody to keep sticky
    summary = status(api)
    assert summary["arms"]["candidate"]["answers"] == 2 * sum(v == {"v3"} for v in seen.values())
    stopped = api.delete("/admin/models/canary", headers=ADMIN)
    assert stopped.status_code == 200 and stopped.json()["version"] == "v3"
    assert {api.post("/v1/recommend", json={"user_id": u}).json()["model_version"] for u in users[:40]} == {
        "v1"
    }
    assert Registry(home).show("v3").stage is Stage.CANDIDATE
    assert api.delete("/admin/models/canary", headers=ADMIN).status_code == 404


def test_a_worse_canary_is_rolled_back_automatically_under_replayed_traffic(
    api: httpx.Client, server: ServerProcess, home: Path, plan: ReplayPlan
) -> None:
    before = api.get("/metrics").text
    assert start(api, "v2", 0.5, **JUDGE).status_code == 200
    records = replay(server, plan)
    assert len(records) >= 400
    assert all(r.ok for r in records), Counter((r.status, r.error) for r in records if not r.ok)
    assert {r.feedback_status for r in records} == {200}  # every label was committed
    summary = status(api)
    assert not summary["active"]
    decision = summary["decisions"][-1]
    assert decision["version"] == "v2" and decision["decision"] == "rollback"
    assert "ndcg@10" in decision["reason"] and "worse beyond the 10% margin" in decision["reason"]
    assert decision["answers"] <= ROLLBACK_WITHIN, decision  # detected within the stated requests
    last_v2 = max(i for i, r in enumerate(records) if r.model_version == "v2")
    assert last_v2 < ROLLBACK_WITHIN + RATE * 3  # the judge looks every second: + a few seconds of requests
    assert {r.model_version for r in records[last_v2 + 1 :]} == {"v1"}
    assert len(records) - last_v2 > 100  # and the rest of the traffic, all of it, came from v1
    print(f"rollback after {decision['answers']} answers; last v2 answer was request {last_v2 + 1}")
    row = Registry(home).show("v2")
    assert row.stage is Stage.ARCHIVED
    reason = Registry(home).history("v2")[-1]
    assert reason[:2] == ("canary", "archived") and reason[2].startswith("canary rollback: ndcg@10")
    after = api.get("/metrics").text
    assert (
        metric(after, "recdrill_canary_decisions_total", decision="rollback")
        - metric(before, "recdrill_canary_decisions_total", decision="rollback")
        == 1
    )
    assert metric(after, "recdrill_arm_ndcg10_count", arm="candidate") >= JUDGE["min_samples"]
    assert metric(after, "recdrill_arm_latency_seconds_count", arm="candidate") > 0
    assert server.log_path.read_text().count("canary v2 rolled back: ndcg@10") == 1
    again = start(api, "v2", 0.5)  # archived: a rolled-back version does not come back by accident
    assert again.status_code == 422 and again.json()["reason"] == "stage"


def test_an_equally_good_canary_is_not_rolled_back_in_the_same_traffic(
    api: httpx.Client, server: ServerProcess, home: Path, plan: ReplayPlan
) -> None:
    assert start(api, "v3", 0.5, **JUDGE).status_code == 200
    records = replay(server, plan)
    assert all(r.ok for r in records) and {r.feedback_status for r in records} == {200}
    summary = status(api)
    assert summary["active"] and summary["version"] == "v3", summary
    assert [d for d in summary["decisions"] if d["version"] == "v3" and d["decision"] == "rollback"] == []
    assert summary["verdict"]["decision"] in ("wait", "promote")
    candidate, primary = summary["arms"]["candidate"], summary["arms"]["primary"]
    assert min(candidate["samples"], primary["samples"]) >= 4 * JUDGE["min_samples"]  # well past min_samples
    assert candidate["ndcg10"] > 0.5 * primary["ndcg10"]
    assert Counter(r.model_version for r in records).keys() == {"v1", "v3"}
    assert Registry(home).show("v3").stage is Stage.CANARY


def test_shadow_mode_never_changes_answers_and_records_overlap(api: httpx.Client, plan: ReplayPlan) -> None:
    users = plan.user_ids[:60]

    def answers() -> list[Any]:
        found = []
        for user in users:
            response = api.post("/v1/recommend", json={"user_id": user})
            assert response.status_code == 200
            body = response.json()
            found.append((body["items"], body["served_by"], body["model_version"]))
        return found

    baseline = answers()
    before = api.get("/metrics").text
    started = start(api, "v3", 1.0, mode="shadow", max_p99_ratio=100.0)
    assert started.status_code == 200, started.text
    assert answers() == baseline  # the same lists, the same tier, the primary's version
    deadline = time.monotonic() + 10.0
    summary = status(api)
    while summary["shadow"]["scored"] < len(users) and time.monotonic() < deadline:
        time.sleep(0.05)  # the last shadow scorings run after their answers went out
        summary = status(api)
    assert summary["mode"] == "shadow" and summary["shadow"]["scored"] == len(users)
    assert 0.0 < summary["shadow"]["overlap10"] <= 1.0
    after = api.get("/metrics").text
    scored = metric(after, "recdrill_shadow_total", outcome="scored") - metric(
        before, "recdrill_shadow_total", outcome="scored"
    )
    assert scored == summary["shadow"]["scored"]
    assert metric(after, "recdrill_shadow_overlap10_count") >= scored
    assert summary["arms"]["candidate"]["answers"] == scored  # its latency is the shadow's


def test_refusals_are_json_errors_and_leave_the_primary_serving(api: httpx.Client) -> None:
    unknown = start(api, "v99", 0.1)
    assert unknown.status_code == 404 and "v99" in unknown.json()["error"]
    own = start(api, "v1", 0.1)
    assert own.status_code == 422 and "primary model already" in own.json()["error"]
    for body in ({"version": "v3", "share": 0}, {"version": "v3", "share": 0.5, "mode": "blue"}):
        assert api.post("/admin/models/canary", json=body, headers=ADMIN).status_code == 422
    assert api.post("/admin/models/canary", json={"version": "v3", "share": 0.5}).status_code == 401
    assert not status(api)["active"]


def test_the_cli_starts_reports_and_stops_a_canary(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", KEY)
    target = ["--target", server.url]
    assert main(["registry", "promote", "v3", "--canary", "25", "--min-samples", "100000", *target]) == 0
    assert "v3: canary started for 25% of users" in capsys.readouterr().out
    assert main(["registry", "canary-status", *target]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["active"], summary["version"], summary["share"], summary["mode"]) == (
        True,
        "v3",
        0.25,
        "canary",
    )
    assert summary["judge"]["min_samples"] == 100000 and summary["auto_promote"] is False
    assert main(["registry", "canary-stop", *target]) == 0
    assert "v3: canary stopped" in capsys.readouterr().out
    assert main(["registry", "promote", "v3", "--shadow", *target]) == 0
    assert "v3: shadow started for 100% of users" in capsys.readouterr().out
    assert main(["registry", "canary-stop", *target]) == 0
    capsys.readouterr()
    assert main(["registry", "promote", "v99", "--canary", "10", *target]) == 1  # refused by the server
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "404" in error and "v99" in error
    assert main(["registry", "promote", "v3", "candidate", "--canary", "10", *target]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["registry", "canary-stop", *target]) == 1  # nothing running: the server's 404
    monkeypatch.delenv("RECDRILL_ADMIN_KEY")
    assert main(["registry", "canary-status", *target]) == 2
    assert "RECDRILL_ADMIN_KEY is not set" in capsys.readouterr().err


def test_every_worker_follows_the_canary_start_and_stop(home: Path, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(home))
        patch.setenv("RECDRILL_MODEL_VERSION", "v1")
        folder = Registry(home).materialise("v1", tmp_path / "v1")
        server = ServerProcess(folder, tmp_path / "state", workers=2, admin_key=KEY, deadline_ms=500)
    with server, httpx.Client(base_url=server.url, timeout=30.0) as admin:
        assert start(admin, "v3", 1.0, min_samples=100_000).status_code == 200
        assert _each_worker_serves(server, "v3")
        assert admin.delete("/admin/models/canary", headers=ADMIN).status_code == 200
        assert _each_worker_serves(server, "v1")


def _each_worker_serves(server: ServerProcess, version: str, timeout_s: float = 30.0) -> bool:
    """Whether both workers answer ``version`` (fresh connections reach either) before the timeout."""
    latest: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with httpx.Client(base_url=server.url, timeout=30.0, headers={"Connection": "close"}) as client:
            response = client.post("/v1/recommend", json={"user_id": "U-000001"})
        assert response.status_code == 200
        latest[response.headers["x-recdrill-worker"]] = response.json()["model_version"]
        if len(latest) == 2 and set(latest.values()) == {version}:
            return True
        time.sleep(0.05)
    return False


def test_an_auto_promoted_canary_becomes_production_through_the_reload_path(
    api: httpx.Client, server: ServerProcess, home: Path, plan: ReplayPlan
) -> None:
    """Last in this file: it leaves v3 in production. A wide margin (50%) lets an equal model pass
    on a few hundred labels; the judge also waits for 100 answers per arm to know the p99."""
    judge = {**JUDGE, "max_ndcg_drop": 0.5}
    assert start(api, "v3", 0.5, auto_promote=True, **judge).status_code == 200
    records = replay(server, plan)
    assert all(r.ok for r in records)
    summary = status(api)
    assert not summary["active"]
    decision = summary["decisions"][-1]
    assert (decision["version"], decision["decision"]) == ("v3", "promote"), summary
    assert api.get("/readyz").json()["model_version"] == "v3"
    assert {r.model_version for r in records[-30:]} == {"v3"}
    registry = Registry(home)
    assert registry.show("v3").stage is Stage.PRODUCTION and registry.show("v1").stage is Stage.ARCHIVED
    assert registry.history("v3")[-1][2].startswith("canary promoted: ndcg@10")
