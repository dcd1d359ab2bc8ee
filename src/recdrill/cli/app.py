"""The ``recdrill`` command group and its entry point, which maps errors to exit codes.

Every ``RecdrillError`` becomes one line on stderr (``recdrill: error: ...``) and the error's exit
code; usage errors exit 2. Commands live in the sibling modules; nothing here holds logic a library
user would need.
"""

from __future__ import annotations

import click

from recdrill.errors import RecdrillError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recdrill")
def cli() -> None:
    """recdrill: e-commerce recommendation that keeps serving through failures."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recdrill`` script; returns the exit code."""
    try:
        # Without standalone mode click returns (not raises) a command's ``ctx.exit(code)``.
        returned = cli.main(args=argv, prog_name="recdrill", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("recdrill: interrupted", err=True)
        return 130
    except RecdrillError as exc:
        click.echo(f"recdrill: error: {exc}", err=True)
        return exc.exit_code
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0
