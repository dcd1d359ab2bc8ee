"""`chaos run` (Chaos Toolkit) drives a recdrill drill from examples/chaos/slow-ranker.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recdrill.serving.runtime.local_process import ServerProcess
from tests.chaos.conftest import KEY, server_faults
from tests.conftest import REPO_ROOT

EXPERIMENT = REPO_ROOT / "examples" / "chaos" / "slow-ranker.json"
CHAOS = Path(sys.executable).parent / "chaos"


@pytest.mark.skipif(not CHAOS.exists(), reason="chaostoolkit is not installed (pip install -e .[dev])")
def test_chaos_run_injects_checks_and_rolls_back(server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "RECDRILL_ADMIN_KEY": KEY, "RECDRILL_BASE_URL": server.url}
    # chaos writes chaostoolkit.log into its working folder: keep it in tmp_path.
    (tmp_path / "tmp").mkdir()
    done = subprocess.run(
        [
            str(CHAOS),
            "--no-version-check",
            "--settings",
            str(tmp_path / "settings.yaml"),
            "run",
            str(EXPERIMENT),
            "--journal-path",
            "tmp/journal.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"chaos run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    text = (tmp_path / "tmp" / "journal.json").read_text()
    assert KEY not in text  # the key came from the environment, never through the journal
    journal = json.loads(text)

    assert (journal["status"], journal["deviated"]) == ("completed", False)
    before = journal["steady_states"]["before"]
    assert before["steady_state_met"] is True and before["probes"][0]["output"] >= 0.95
    assert journal["steady_states"]["after"]["steady_state_met"] is True

    inject, active, share = journal["run"]
    assert (inject["activity"]["name"], inject["status"]) == ("slow-ranker", "succeeded")
    assert inject["output"]["fault_id"] == "slow-ranker" and inject["output"]["name"] == "ranker-latency"
    assert (active["status"], active["output"]) == ("succeeded", 1)  # the fault was live on the server
    assert share["status"] == "succeeded" and share["output"] >= 0.9  # ... and the fallback served

    (rollback,) = journal["rollbacks"]
    assert (rollback["activity"]["name"], rollback["status"]) == ("revert-slow-ranker", "succeeded")
    assert rollback["output"]["reverted"] is True and rollback["output"]["name"] == "ranker-latency"
    assert server_faults(server.url) == []
    assert (tmp_path / "chaostoolkit.log").exists()
