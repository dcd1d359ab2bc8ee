"""``recdrill drill list`` and ``drill run``: the catalogue, argument checks, and the report a failed
drill still writes. No test starts a server: ``--target`` points at a closed port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from recdrill.cli import main
from recdrill.cli.drills import _is_loopback, exit_as_ended, summary, with_deadline_margin
from recdrill.drills.faults.catalogue import catalogue
from recdrill.drills.scenario import builtin_names, builtin_scenario
from recdrill.drills.stop import StopSwitch
from recdrill.errors import DrillAborted
from recdrill.serving.runtime.child import free_port
from tests.cli.conftest import SHOP

# One fault that needs only the HTTP API, so the drill gets as far as reaching the target.
API_ONLY_SCENARIO = """
name: api-only
traffic: {rate: 10, duration_s: 60}
baseline_s: 5
after_s: 5
faults:
  - {name: slow, fault: ranker-latency, at_s: 10, duration_s: 5, params: {latency_ms: 100}}
hypotheses:
  - {name: up, metric: availability, min: 0.99}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["drill", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # a free port: nothing listens there


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RECDRILL_ADMIN_KEY", "drill-admin-key")
    return "drill-admin-key"


def test_list_json_is_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--json")
    faults = json.loads(out)
    assert code == 0 and [f["name"] for f in faults] == [f.name for f in catalogue()]
    for fault in faults:
        assert set(fault) == {"name", "kind", "summary", "effect", "needs", "params"}
        assert fault["needs"] == sorted(fault["needs"])
    by_name = {f["name"]: f for f in faults}
    assert by_name["worker-kill"]["needs"] == ["workers"]
    assert by_name["ranker-latency"]["params"]["latency_ms"]["type"] == "number"


def test_list_text_names_every_fault_and_the_built_in_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    names = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert code == 0 and names[:-1] == [f.name for f in catalogue()]
    assert lines[-1] == f"built-in scenarios: {', '.join(builtin_names())}"
    assert "                            needs: workers" in lines  # worker-kill's need, indented


@pytest.mark.parametrize("args", [[], ["peak-day", "--preset", "gameday"]], ids=["neither", "both"])
def test_run_needs_exactly_one_scenario(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", *args)
    assert (code, out) == (2, "")
    assert (
        err.strip().splitlines()[-1] == "Error: give a SCENARIO (file or built-in name) or --preset, not both"
    )
    assert not Path("runs").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nosuch"], 2, "no built-in scenario 'nosuch'; built in: gameday, peak-day, peak-day-short"),
        (["--preset", "nosuch"], 2, "no built-in scenario 'nosuch'"),
        (["missing.yaml"], 3, "missing.yaml: no such file"),
    ],
)
def test_an_unknown_scenario_is_one_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(capsys, "run", *args)
    assert (got, out) == (code, "")
    assert err.startswith("recdrill: error: ") and message in err and err.count("\n") == 1


def test_a_target_needs_the_admin_key_then_data(
    closed_port_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run", "peak-day-short", "--target", closed_port_url, "--data", SHOP)
    assert (code, out) == (2, "")
    assert err == (
        "recdrill: error: RECDRILL_ADMIN_KEY is not set: the drill needs a key that may inject faults\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECDRILL_ADMIN_KEY", "k")
        code, _, err = run(capsys, "run", "peak-day-short", "--target", closed_port_url)
    assert code == 2 and err.strip().splitlines()[-1] == (
        "Error: --data is needed with --target: the served model's data judges the answers"
    )


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--server-pid", "0"], "--server-pid"), (["--state-dir", "absent"], "--state-dir")],
)
def test_bad_target_options_are_usage_errors(
    args: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "run", "peak-day-short", "--target", "http://127.0.0.1:1", *args)
    assert code == 2 and f"Invalid value for '{option}'" in err


def test_a_fault_the_target_cannot_take_stops_before_anything_runs(
    admin_key: str, closed_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "drill"
    args = ["run", "peak-day-short", "--target", closed_port_url, "--data", SHOP, "--out", str(out)]
    code, stdout, err = run(capsys, *args)
    assert (code, stdout) == (9, "")
    assert err.strip().splitlines()[-1] == (
        "recdrill: error: fault step 'worker-killed' cannot run here: fault 'worker-kill' needs the "
        "server's worker pids (recdrill drill run --server-pid PID, or no --target)"
    )
    assert not out.exists()  # refused before a journal existed: no report


def test_an_unreachable_target_still_writes_report_and_journal(
    admin_key: str, closed_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "api-only.yaml"
    scenario.write_text(API_ONLY_SCENARIO)
    out = tmp_path / "drill"
    code, stdout, err = run(
        capsys, "run", str(scenario), "--target", closed_port_url, "--data", SHOP, "--out", str(out)
    )
    lines = err.strip().splitlines()
    assert (code, stdout) == (9, "")
    assert (
        f"drill 'api-only': 10 req/s for 60 s, 1 fault(s), against {closed_port_url}; deadline 120 s" in lines
    )
    assert lines[-1].startswith(f"recdrill: error: cannot reach the target {closed_port_url}: ")
    assert f"report: {out / 'report.html'} (data: {out / 'report.json'}" in err
    report = json.loads((out / "report.json").read_text())
    assert (report["status"], report["target"], report["summary"]["requests"]) == (
        "failed",
        closed_port_url,
        0,
    )
    journal = json.loads((out / "journal.json").read_text())
    assert journal["status"] == "failed" and journal["deviated"] is False
    assert (out / "report.html").is_file()
    assert admin_key not in (out / "journal.json").read_text() + (out / "report.json").read_text()


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("https://localhost:8443/", True),
        ("http://[::1]:8000", True),
        ("http://127.8.9.10", True),
        ("http://10.0.0.7:8000", False),
        ("https://shop.example.com", False),
        ("not a url", False),
    ],
)
def test_is_loopback_tells_a_deployment_on_this_machine(url: str, loopback: bool) -> None:
    assert _is_loopback(url) is loopback


def _journal(**summary_overrides: Any) -> dict[str, Any]:
    row = {
        "fault": "worker-killed",
        "detect_s": 1.24,
        "failover_s": None,
        "recover_s": 3.0,
        "availability": 0.99912,
        "quality_kept": 0.9,
        "events_lost": 0,
        "checks": {"detected": True, "recovered": False},
        "passed": False,
    }
    summary_ = {
        "requests": 1200,
        "availability": 0.99,
        "availability_first_try": 0.98,
        "retried": 12,
        "p50_ms": 3.21,
        "p99_ms": 40.0,
        "ndcg10": 0.25,
        "events_lost": 0,
        **summary_overrides,
    }
    return {
        "scenario": {"name": "peak-day-short"},
        "status": "completed",
        "deviated": True,
        "cleanliness": {"ok": False},
        "summary": summary_,
        "baseline": {"ndcg10": None},
        "scorecard": [row, {**row, "fault": "surge-5x", "checks": {"detected": True}, "passed": True}],
    }


def test_summary_states_the_verdict_scorecard_and_failed_checks() -> None:
    lines = summary(_journal()).splitlines()
    assert lines[0] == "drill 'peak-day-short': completed, DEVIATED; target left clean: NO"
    assert lines[1] == (
        "  1200 requests, availability 0.9900 (first try 0.9800, 12 retried), p50/p99 3.2/40.0 ms, "
        "NDCG@10 0.2500 (baseline -), events lost: 0"
    )
    assert lines[2].split() == [
        "fault",
        "detect",
        "failover",
        "recover",
        "avail",
        "quality",
        "lost",
        "verdict",
    ]
    assert lines[3].split() == [
        "worker-killed",
        "1.2s",
        "-",
        "3.0s",
        "0.999",
        "0.90",
        "0",
        "FAIL:",
        "recovered",
    ]
    assert lines[4].split()[0] == "surge-5x" and lines[4].endswith("  pass")
    assert len(lines) == 5


def test_summary_of_a_drill_without_traffic_shows_dashes() -> None:
    journal = _journal(availability=None, availability_first_try=None, p50_ms=None, p99_ms=None, ndcg10=None)
    journal.update(deviated=False, scorecard=[], cleanliness={"ok": True})
    lines = summary(journal).splitlines()
    assert lines[0].endswith("no deviation; target left clean: yes")
    assert "availability - (first try -, 12 retried), p50/p99 -/- ms, NDCG@10 - (baseline -)" in lines[1]
    assert len(lines) == 3


def test_summary_says_why_a_drill_aborted_and_what_it_could_not_send() -> None:
    journal = _journal(skipped=600, skipped_share=0.6, judgement_weak=True)
    journal.update(
        status="aborted", aborted={"reason": "deadline", "detail": "the drill's 90 s deadline passed"}
    )
    lines = summary(journal).splitlines()
    assert lines[2:4] == [
        "  aborted: the drill's 90 s deadline passed",
        "  600 requests not sent (60.0 %: the drill was short of CPU; not counted against availability); "
        "the judgement is WEAK (most traffic unsent)",
    ]


@pytest.mark.parametrize(
    ("status", "aborted", "reason", "code"),
    [
        ("completed", None, None, None),
        ("completed", None, "SIGTERM", None),  # the signal came after the drill had ended
        ("aborted", {"reason": "deadline", "detail": "the drill's 90 s deadline passed"}, None, 10),
        ("aborted", {"reason": "condition", "detail": "availability out of bounds for 15 s"}, None, 10),
        ("aborted", {"reason": "stopped", "detail": "stopped by SIGTERM"}, "SIGTERM", 143),
        ("aborted", {"reason": "stopped", "detail": "stopped by SIGINT"}, "SIGINT", 130),
    ],
)
def test_the_exit_code_says_how_the_drill_ended(
    status: str, aborted: dict[str, str] | None, reason: str | None, code: int | None
) -> None:
    switch = StopSwitch(reason=reason)
    journal = {**_journal(), "status": status, "aborted": aborted}
    with click.Context(click.Command("run")):
        if code is None:
            exit_as_ended(journal, switch)
        elif code == DrillAborted.exit_code:
            with pytest.raises(DrillAborted, match=f"drill aborted: {aborted and aborted['detail']}"):
                exit_as_ended(journal, switch)
        else:
            with pytest.raises(click.exceptions.Exit) as exited:
                exit_as_ended(journal, switch)
            assert exited.value.exit_code == code


def test_deadline_margin_replaces_the_scenarios_own() -> None:
    scenario = builtin_scenario("peak-day")
    assert scenario.deadline_s == 300 + 150
    assert (
        with_deadline_margin(scenario, 30.0).deadline_s == 330
        and with_deadline_margin(scenario, None) is scenario
    )


def test_summary_says_which_faults_the_drill_never_reached() -> None:
    journal = _journal()
    journal["scorecard"][1].update(reached=False, passed=False)
    assert summary(journal).splitlines()[4].endswith("  not reached (the drill ended before it)")
