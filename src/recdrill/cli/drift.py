"""The ``drift`` command group: ``drift check`` compares two tables column by column."""

from __future__ import annotations

import json
from pathlib import Path

import click

from recdrill.cli.app import cli
from recdrill.cli.common import json_option


@cli.group("drift")
def drift_group() -> None:
    """Data drift between a reference table and a current one."""


@drift_group.command("check")
@click.option(
    "--reference", required=True, type=click.Path(path_type=Path), help="Reference table (.csv or .parquet)."
)
@click.option(
    "--current", required=True, type=click.Path(path_type=Path), help="Current table, same columns."
)
@json_option("Write the result as JSON here ({'columns': {...}, 'dataset_drift': ...}).")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write an HTML report here.",
)
@click.option(
    "--method",
    default=None,
    metavar="NAME",
    help="Force one test (ks, chi2, psi, kl, js, wasserstein) on every column it fits; the others keep "
    "the default (Evidently's rule).",
)
@click.option("--columns", default=None, metavar="A,B", help="Only these columns (default: all).")
def check_command(
    reference: Path,
    current: Path,
    json_out: Path | None,
    html_out: Path | None,
    method: str | None,
    columns: str | None,
) -> None:
    """Test every column of CURRENT for drift from REFERENCE and print a table."""
    from recdrill.monitor.drift.batch import check_frames, read_table, same_columns

    ref, cur = read_table(reference), read_table(current)
    same_columns(ref, cur, current)
    names = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    check = check_frames(ref, cur, method, names)
    click.echo(check.format_table())
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(check.to_dict(), indent=2) + "\n")
    if html_out is not None:
        from recdrill.monitor.drift.html import write_html

        write_html(html_out, check, ref, cur)
        click.echo(f"wrote {html_out}", err=True)
