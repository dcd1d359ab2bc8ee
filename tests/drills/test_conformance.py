"""Conformance: every fault in the catalogue is injected and reverted against one live server, and
the cleanliness check passes after each (nothing active, no worker stopped, as many workers as
before, the same model version); then a drill running seven faults at once is interrupted with
SIGINT and leaves the server just as clean. (A frozen worker is left out of that drill: the supervisor
replaces a worker stopped for 5 s, which would race the test's wait for every fault to be in place;
``test_drill_e2e`` interrupts a drill with a frozen worker on its own.)

The server has everything a fault may need: two workers, a registry with verification keys,
its state and model folders on this machine, and a loopback proxy in front of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import leave_one_out
from recdrill.drills.cleanliness import TargetSnapshot, cleanliness_report, leftovers
from recdrill.drills.faults.catalogue import catalogue, fault_type
from recdrill.drills.faults.proxy import LoopbackProxy
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.target import DrillTarget
from recdrill.registry import Registry, init_keys
from recdrill.registry.keys import KeyFiles
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "conformance-key"
# Small settings so that each fault is cheap here; the defaults are what a drill uses.
CHEAP: dict[str, dict[str, object]] = {
    "cpu-hog": {"processes": 1},
    "memory-pressure": {"mib": 64},
    "traffic-surge": {"multiplier": 2, "base_rate": 10},
    "hot-key": {"rate": 10},
    "malformed-request-storm": {"rate": 10},
    "feature-drift": {"rate": 10},
    "cold-start-flood": {"rate": 10},
    "poisoned-feedback": {"rate": 10},
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("conformance-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(root))
        patch.delenv("RECDRILL_MODEL_VERSION", raising=False)
        init_keys(root)
        Registry(root)
        KeyFiles(root).signing.rename(root.parent / f"{root.name}-signing.pem")  # verify-only server
        yield root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("conformance") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(home: Path, model_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, model_dir.parent / "state", admin_key=KEY, workers=2) as running:
        running.answering_pids(set(running.worker_pids()))
        yield running


@pytest.fixture(scope="module")
def target(
    server: ServerProcess, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DrillTarget]:
    plan = ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)
    with LoopbackProxy(server.url) as proxy:
        yield DrillTarget(
            server.url,
            KEY,
            plan=plan,
            workers=server,
            state_dir=server.state_dir,
            model_dir=model_dir,
            snapshot=ShopSnapshot.load(model_dir),
            local=True,
            proxy=proxy,
            scratch_dir=tmp_path_factory.mktemp("scratch"),
        )


def test_the_catalogue_has_every_family_of_fault() -> None:
    names = {f.name for f in catalogue()}
    assert {
        "worker-kill", "worker-freeze", "cpu-hog", "memory-pressure", "feedback-store-locked",
        "feedback-store-full", "network-latency", "network-drop", "network-reset", "traffic-surge",
        "hot-key", "malformed-request-storm", "ranker-latency", "ranker-error", "ranker-nan",
        "cache-stale", "cache-empty", "corrupt-artifact", "unsigned-artifact", "wrongly-signed-artifact",
        "bad-model-push", "feature-drift", "poisoned-feedback", "cold-start-flood",
    } <= names  # fmt: skip
    kinds = {f.name: f.kind for f in catalogue()}
    assert kinds["worker-kill"] == "infrastructure" and kinds["bad-model-push"] == "ml"


@pytest.mark.parametrize("name", [f.name for f in catalogue()])
def test_every_fault_injects_reverts_and_leaves_the_target_clean(name: str, target: DrillTarget) -> None:
    ftype = fault_type(name)
    params = ftype.parse(CHEAP.get(name, {}))
    before = TargetSnapshot.of(target)
    assert before.model_version is not None and before.workers == 2
    if ftype.preflight is not None:
        ftype.preflight(target, params)
    handle = ftype.inject(target, params)
    try:
        time.sleep(0.5)
        if ftype.leftovers is not None and name not in ("worker-kill",):
            assert ftype.leftovers(target), f"{name}: active, yet its leftovers check sees nothing"
    finally:
        ftype.revert(target, params, handle)
    ftype.revert(target, params, handle)  # a second revert is harmless
    clean = cleanliness_report(target, before, all_reverted=True)
    assert clean["ok"], clean


MANY_AT_ONCE = """
name: everything-at-once
traffic: {rate: 10, duration_s: 200, seed: 2, feedback_rate: 2}
baseline_s: 3
after_s: 3
faults:
  - {name: nan, fault: ranker-nan, at_s: 3, duration_s: 150}
  - {name: empty-cache, fault: cache-empty, at_s: 3, duration_s: 150}
  - {name: slow-store, fault: feedback-store-slow, at_s: 3, duration_s: 150, params: {latency_ms: 20}}
  - {name: slow-network, fault: network-latency, at_s: 3, duration_s: 150, params: {latency_ms: 5}}
  - {name: hog, fault: cpu-hog, at_s: 3, duration_s: 150, params: {processes: 1}}
  - {name: hot, fault: hot-key, at_s: 3, duration_s: 150, params: {rate: 5}}
  - {name: bad-push, fault: bad-model-push, at_s: 3, duration_s: 150}
hypotheses:
  - {name: up, metric: availability, min: 0.5}
rollbacks:
  - {action: continue-workers}
"""


def _hog_processes() -> list[int]:
    """Pids of CPU hogs (their command line carries the hog's code) anywhere on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ttl, parent" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_drill_interrupted_with_sigint_leaves_the_target_clean(
    server: ServerProcess, target: DrillTarget, model_dir: Path, home: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "many.yaml"
    scenario.write_text(MANY_AT_ONCE)
    before = TargetSnapshot.of(target)
    command = [
        *(sys.executable, "-m", "recdrill", "drill", "run", str(scenario), "--target", server.url),
        *("--data", DATA, "--out", str(tmp_path / "out"), "--server-pid", str(server.pid)),
        *("--state-dir", str(server.state_dir), "--model-dir", str(model_dir)),
    ]
    env = {**os.environ, "RECDRILL_ADMIN_KEY": KEY, HOME_ENV: str(home)}
    drill = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # every fault in place: the server's, a stopped worker, a hog
            injected = (
                len(leftovers(DrillTarget(server.url, KEY))) >= 3
                and _hog_processes()
                and target.model_version() != before.model_version
            )
            if injected:
                break
            time.sleep(0.3)
        assert injected, "the drill never had all its faults in place"
        drill.send_signal(signal.SIGINT)
        _, err = drill.communicate(timeout=90)
    finally:
        if drill.poll() is None:
            drill.kill()
            drill.wait()
    assert drill.returncode == 130, err[-3000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "aborted" and report["aborted"]["detail"] == "stopped by SIGINT"
    assert all(f["reverted"] for f in report["faults"]), [f for f in report["faults"] if not f["reverted"]]
    assert report["cleanliness"]["ok"], report["cleanliness"]
    # And seen from outside the drill's process, not only by its own report:
    assert cleanliness_report(DrillTarget(server.url, KEY, workers=server), before, all_reverted=True)["ok"]
    assert _hog_processes() == []
