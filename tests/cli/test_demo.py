"""``recdrill demo``: what it refuses before building a shop (never run to completion here: it serves)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from recdrill.cli import main


def demo(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> tuple[int, list[str]]:
    code = main(["demo", "--out", str(out), *args])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.strip().splitlines()


def test_help_names_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    text = "".join(capsys.readouterr().out.split())  # click wraps long lines, even at a hyphen
    for default in ("shopsim", "peak-day-short", "runs/demo", "local", "no-tls"):
        assert f"[default:{default}]" in text


@pytest.mark.parametrize(
    ("scenario", "code", "message"),
    [
        (
            "nosuch",
            2,
            "recdrill: error: no built-in scenario 'nosuch'; built in: gameday, peak-day, peak-day-short",
        ),
        ("absent.yaml", 3, "recdrill: error: absent.yaml: no such file"),
    ],
)
def test_an_unknown_scenario_stops_before_any_work(
    scenario: str, code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert demo(capsys, out, "--scenario", scenario) == (code, [message])
    assert not out.exists()


def test_an_invalid_scenario_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "broken.yml"
    scenario.write_text("name: [unclosed\n")
    out = tmp_path / "demo"
    code, err = demo(capsys, out, "--scenario", str(scenario))
    # (Only the first line is asserted: the YAML parser's message spans several lines.)
    assert code == 2 and err[0].startswith(f"recdrill: error: {scenario}: not valid YAML")
    assert not out.exists()


def test_tls_with_the_ray_backend_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code, err = demo(capsys, out, "--tls", "--backend", "ray")
    assert code == 2
    assert err[-1] == "Error: --tls is for --backend local: Ray Serve terminates TLS in its own proxy"
    assert not out.exists()


def test_an_unknown_backend_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = demo(capsys, tmp_path / "demo", "--backend", "k8s")
    assert code == 2 and "Invalid value for '--backend'" in err[-1]


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is not None, reason="ray is installed: the demo would run"
)
def test_the_ray_backend_without_ray_fails_before_minutes_of_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code, err = demo(capsys, out, "--backend", "ray")
    assert (code, err) == (2, ["recdrill: error: Ray Serve is not installed: pip install 'recdrill[ray]'"])
    assert not out.exists()
