"""SIGTERM and SIGINT for a drill command: routed to the drill's stop switch while it runs, the
command's own way before it began, and every process the command started stopped on the way out.
The last test terminates a real ``recdrill drill run`` (its own server, a CPU-hog fault) mid-drill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from recdrill.cli.drill_signals import drill_session, signal_exit_code
from recdrill.drills.stop import StopSwitch
from tests.cli.conftest import SHOP

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_stop_signal_exits_as_a_shell_reports_it() -> None:
    assert (signal_exit_code("SIGTERM"), signal_exit_code("SIGINT")) == (143, 130)
    assert signal_exit_code(None) is None and signal_exit_code("SIGHUP") is None


def test_a_signal_while_the_drill_runs_trips_its_switch_and_nothing_else() -> None:
    switch = StopSwitch()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with drill_session(switch):
        switch.arm()
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)  # a second one: already stopping
        assert switch.reason == "SIGTERM"
        switch.disarm()
        signal.raise_signal(signal.SIGTERM)  # after the report: ignored
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_signal_before_the_drill_began_ends_the_command(signum: int, raised: type[BaseException]) -> None:
    switch = StopSwitch()
    with pytest.raises(raised) as caught, drill_session(switch):
        signal.raise_signal(signum)
        pytest.fail("the signal did not stop the command")
    if raised is SystemExit:
        assert caught.value.args == (143,)
    assert switch.reason == signal.Signals(signum).name


def test_processes_the_command_left_running_are_stopped_and_older_ones_kept() -> None:
    older = subprocess.Popen(SLEEPER)
    try:
        with drill_session(StopSwitch()):
            leftover = subprocess.Popen(SLEEPER)
        assert leftover.wait(15) == -signal.SIGTERM
        assert older.poll() is None  # started before the command: not its to stop
    finally:
        older.kill()
        older.wait()


SCENARIO = """
name: long-enough-to-terminate
traffic: {rate: 10, duration_s: 120, seed: 1, warmup_requests: 2}
baseline_s: 2
after_s: 2
faults:
  - {name: slow, fault: ranker-latency, at_s: 2, duration_s: 100, params: {latency_ms: 20}}
  - {name: hog, fault: cpu-hog, at_s: 3, duration_s: 100, params: {processes: 1}}
hypotheses:
  - {name: up, metric: availability, min: 0.5}
rollbacks:
  - {action: remove-server-faults}
"""


def read_until(stream: list[str], drill: subprocess.Popen[str], text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(text in line for line in stream):
        if drill.poll() is not None or time.monotonic() > deadline:
            drill.kill()
            pytest.fail(f"never saw {text!r}; stderr:\n{''.join(stream)[-3000:]}")
        time.sleep(0.1)


def test_sigterm_mid_drill_leaves_an_aborted_report_and_no_process_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "long.yaml").write_text(SCENARIO)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "recdrill", "drill", "run", str(tmp_path / "long.yaml")]
    drill = subprocess.Popen(
        [*command, "--data", SHOP, "--out", str(out)], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    lines: list[str] = []
    stderr = drill.stderr
    assert stderr is not None

    def read() -> None:
        for line in stderr:  # line by line, as the drill prints them
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        read_until(lines, drill, "inject hog (cpu-hog)", timeout_s=120)
        own = psutil.Process(drill.pid).children(recursive=True)  # the server, its workers, the hog
        assert len(own) >= 4, own
        drill.send_signal(signal.SIGTERM)
        assert drill.wait(60) == 143, "".join(lines)[-3000:]
    finally:
        if drill.poll() is None:
            drill.kill()
            drill.wait()
        reader.join(5)
        stderr.close()
    _, alive = psutil.wait_procs(own, timeout=5)
    assert alive == [], f"left running: {alive}"
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "aborted" and report["aborted"]["reason"] == "stopped"
    assert report["aborted"]["detail"] == "stopped by SIGTERM"
    assert [f["reverted"] for f in report["faults"]] == [True, True]
    assert report["faults"][1]["observed"]["processes"] == 1  # the hog was killed on revert
    assert report["rollbacks"][0]["status"] == "succeeded" and report["cleanliness"]["ok"]
    journal = json.loads((out / "journal.json").read_text())
    assert journal["status"] == "aborted"
    assert any("SIGTERM: aborting the drill" in line for line in lines)
