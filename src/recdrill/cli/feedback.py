"""The ``feedback`` command group: ``feedback export`` writes the durable log out for retraining."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from recdrill._home import recdrill_home
from recdrill.cli.app import cli
from recdrill.cli.common import home_option
from recdrill.contract import FEEDBACK_DB
from recdrill.errors import ConfigError
from recdrill.registry.keys import load_data_keyring
from recdrill.serving.feedback.export import count_withheld, export_feedback


def parse_since(text: str) -> float:
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it names a zone).

    Example:
        >>> parse_since("1700000000"), parse_since("2023-11-14T22:13:20")
        (1700000000.0, 1700000000.0)
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since must be epoch seconds or an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@cli.group("feedback")
def feedback_group() -> None:
    """The durable feedback log written by 'recdrill serve'."""


@feedback_group.command("export")
@click.option(
    "--state-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The server's state folder (holds feedback.db).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .parquet (typed, compact; the default choice) or .csv.",
)
@click.option(
    "--since", default=None, metavar="TS", help="Only events at or after TS (epoch seconds or ISO 8601)."
)
@click.option(
    "--reveal-users",
    is_flag=True,
    help="Add a raw_user_id column, decrypted with the data key (RECDRILL_DATA_KEY or "
    "RECDRILL_HOME/keys/data.key): for data-subject requests; the file then holds personal data.",
)
@click.option(
    "--include-quarantined",
    is_flag=True,
    help="Keep the events the anomaly monitor quarantined (bot bursts, poisoned clicks); "
    "by default they are left out of the export.",
)
@home_option
def export_command(
    state_dir: Path,
    out: Path,
    since: str | None,
    reveal_users: bool,
    include_quarantined: bool,
    home: Path | None,
) -> None:
    """Export feedback events for retraining (safe while the server runs); user ids are pseudonyms
    unless --reveal-users; quarantined events are left out unless --include-quarantined."""
    keyring = load_data_keyring(home or recdrill_home()) if reveal_users else None
    moment = None if since is None else parse_since(since)
    db = state_dir / FEEDBACK_DB
    count = export_feedback(db, out, moment, reveal=keyring, include_quarantined=include_quarantined)
    # Counted after the export, on a snapshot of its own: a server still quarantining may move it.
    withheld = 0 if include_quarantined else count_withheld(db, moment)
    click.echo(f"exported {count} event(s) to {out}; withheld {withheld} quarantined event(s)", err=True)
    if reveal_users:
        click.echo(f"warning: {out} holds raw user ids: keep it private and delete it when done", err=True)
