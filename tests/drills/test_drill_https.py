"""A drill over HTTPS: ``recdrill drill --ca-bundle`` against a server with a development certificate,
verifying it; and the same drill without the bundle stopping before any traffic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.errors import DrillError
from recdrill.security.tls import TlsFiles, make_dev_certificate
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=300,n_users=200,n_events=3000"
KEY = "https-drill-key"

SCENARIO = """
name: https-smoke
traffic: {rate: 20, duration_s: 6, seed: 2, warmup_requests: 5}
baseline_s: 2
after_s: 2
window_s: 1
faults:
  - {name: ranker-errors, at_s: 2, duration_s: 2, kind: error, rate: 1.0}
hypotheses:
  - {name: available, metric: availability, min: 0.99}
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_dev_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[ServerProcess]:
    model = tmp_path_factory.mktemp("https-drill") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(model)]) == 0
    with ServerProcess(
        model,
        model.parent / "state",
        admin_key=KEY,
        tls_cert=tls.cert,
        tls_key=tls.key,
        ca_bundle=tls.ca_cert,
    ) as running:
        yield running


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> list[str]:
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", KEY)
    scenario = tmp_path / "https.yaml"
    scenario.write_text(SCENARIO)
    return ["drill", "run", str(scenario), "--target", server.url, "--data", DATA]


def test_a_drill_runs_end_to_end_over_verified_https(
    drill: list[str], tls: TlsFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*drill, "--out", str(tmp_path / "out"), "--ca-bundle", str(tls.ca_cert)]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())

    assert report["target"].startswith("https://") and report["status"] == "completed"
    summary = report["summary"]
    assert summary["requests"] >= 60 and summary["availability"] >= 0.99  # answered through the fault
    (fault,) = report["faults"]
    assert fault["reverted"] and fault["injected_at"] is not None  # the admin API was reached too
    assert fault["failover_s"] is not None  # the errors sent traffic to the fallback tier
    assert report["cleanliness"]["ok"] is True
    assert f"availability {summary['availability']:.4f}" in capsys.readouterr().out


def test_without_the_bundle_the_drill_stops_before_any_traffic(
    drill: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*drill, "--out", str(tmp_path / "out")]) == DrillError.exit_code
    err = capsys.readouterr().err
    (line,) = [entry for entry in err.splitlines() if entry.startswith("recdrill: error:")]
    assert "CERTIFICATE_VERIFY_FAILED" in line and "--ca-bundle" in line
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["status"] == "failed" and report["summary"]["requests"] == 0
    assert report["faults"][0]["injected_at"] is None  # nothing was injected
