"""The ``recdrill`` group and ``main``: every error becomes its exit code and one line on stderr."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from recdrill.cli import cli, main
from recdrill.errors import (
    ConfigError,
    DataError,
    DataFileNotFoundError,
    DigestMismatchError,
    DrillAborted,
    DrillError,
    FaultRefusedError,
    KeyNameError,
    ModelError,
    RecdrillError,
    RegistryError,
    ServingError,
    VersionNotFoundError,
)

THROWAWAY = "raise-for-test"


@pytest.fixture
def raising() -> Iterator[Callable[[BaseException], None]]:
    """Registers a throwaway ``recdrill raise-for-test`` that raises the exception given, and removes
    it afterwards (the group is shared by every test)."""

    def register(error: BaseException) -> None:
        @click.command(THROWAWAY)
        def command() -> None:
            raise error

        cli.add_command(command)

    yield register
    cli.commands.pop(THROWAWAY, None)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(cli), ids=lambda c: " ".join(c) or "recdrill")
def test_every_command_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "Usage: recdrill" in capsys.readouterr().out


ERRORS: dict[str, tuple[Callable[[], RecdrillError], int]] = {
    "root": (lambda: RecdrillError("something broke"), 1),
    "config": (lambda: ConfigError("--rate must be positive"), 2),
    "config subclass": (lambda: KeyNameError("no live key 'ops'"), 2),
    "missing file": (lambda: DataFileNotFoundError("shop.txt"), 3),
    "data": (lambda: DataError("no interactions"), 4),
    "model": (lambda: ModelError("cannot score"), 5),
    "registry": (lambda: RegistryError("registry locked"), 6),
    "registry subclass": (lambda: VersionNotFoundError("no registered version 'v9'"), 6),
    "artifact refused": (lambda: DigestMismatchError("v1", "files/state.npz"), 7),
    "serving": (lambda: ServingError("not ready"), 8),
    "drill": (lambda: DrillError("target gone"), 9),
    "drill subclass": (lambda: FaultRefusedError("bad key"), 9),
    "drill aborted": (lambda: DrillAborted("availability held below 0.5"), 10),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_recdrill_error_exits_with_its_code_and_one_line(
    case: str, raising: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str]
) -> None:
    make, code = ERRORS[case]
    error = make()
    raising(error)
    assert main([THROWAWAY]) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"recdrill: error: {error}\n"


def test_an_artifact_refusal_names_version_and_reason(
    raising: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str]
) -> None:
    raising(DigestMismatchError("v3", "files/state.npz"))
    assert main([THROWAWAY]) == 7
    assert capsys.readouterr().err == "recdrill: error: v3: refused (digest mismatch): files/state.npz\n"


def test_a_click_usage_error_exits_2_naming_the_problem(
    raising: Callable[[BaseException], None], capsys: pytest.CaptureFixture[str]
) -> None:
    raising(click.UsageError("give --a or --b"))
    assert main([THROWAWAY]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "Error: give --a or --b"
    assert "recdrill: error" not in err


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, click.Abort], ids=["ctrl-c", "abort"])
def test_an_interrupt_exits_130_with_one_line(
    interrupt: type[BaseException],
    raising: Callable[[BaseException], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    raising(interrupt())
    assert main([THROWAWAY]) == 130
    # click ends the ^C line with a newline of its own first; the message is the one line of text
    assert capsys.readouterr().err.lstrip("\n") == "recdrill: interrupted\n"


def test_a_foreign_exception_is_not_turned_into_an_exit_code(
    raising: Callable[[BaseException], None],
) -> None:
    raising(RuntimeError("a bug, not a user error"))
    with pytest.raises(RuntimeError, match="a bug"):
        main([THROWAWAY])


def test_a_command_that_returns_exits_0(raising: Callable[[BaseException], None]) -> None:
    @click.command(THROWAWAY)
    def fine() -> None:
        click.echo("done")

    cli.add_command(fine)  # replaces nothing: the fixture removes it afterwards
    assert main([THROWAWAY]) == 0


def test_unknown_command_and_no_command_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "Usage: recdrill" in captured.out + captured.err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("recdrill, version ")


def test_importing_the_package_registers_every_command_group() -> None:
    assert set(cli.commands) >= {
        "data",
        "demo",
        "drift",
        "drill",
        "eval",
        "feedback",
        "keys",
        "monitor",
        "registry",
        "serve",
        "train",
        "tune",
    }


def test_installed_script_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\nu2 4\n")
    script = Path(sys.executable).with_name("recdrill")
    run = subprocess.run(
        [str(script), "data", "report", "--data", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 4
    assert run.stderr.count("\n") == 1 and "bad.txt:2" in run.stderr and run.stdout == ""


def test_an_explicit_exit_code_of_a_command_is_returned() -> None:
    @click.command(THROWAWAY)
    @click.pass_context
    def command(ctx: click.Context) -> None:
        ctx.exit(3)

    cli.add_command(command)
    try:
        assert main([THROWAWAY]) == 3
    finally:
        cli.commands.pop(THROWAWAY, None)
