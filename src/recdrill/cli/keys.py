"""The ``keys`` command group: create the registry's keys and rotate the data key.

Commands print key file paths and key ids (one-way fingerprints), never key material.
"""

from __future__ import annotations

from pathlib import Path

import click

from recdrill._home import recdrill_home
from recdrill.cli.api_keys import API_KEY_COMMANDS
from recdrill.cli.app import cli
from recdrill.cli.common import home_option, open_registry
from recdrill.registry.keys import DATA_KEY_ENV, SIGNING_KEY_ENV, DataKey, DataKeyring, init_keys


@cli.group("keys")
def keys() -> None:
    """Keys for signing and encrypting models (kept outside the repository, mode 0600)."""


@keys.command("init")
@home_option
def init_command(home: Path | None) -> None:
    """Create the signing key and data key under RECDRILL_HOME/keys/ if they are missing."""
    root = home if home is not None else recdrill_home()
    made = init_keys(root)
    for path in made:
        click.echo(f"created {path}")
    if not made:
        click.echo(f"keys already present in {root / 'keys'} (left unchanged)")
    click.echo(
        f"note: {SIGNING_KEY_ENV} / {DATA_KEY_ENV}, when set, take precedence over the files", err=True
    )


@keys.command("rotate-data-key")
@home_option
@click.option(
    "--feedback-db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Also re-encrypt the user ids of this feedback log (STATE_DIR/feedback.db), in one transaction.",
)
def rotate_command(home: Path | None, feedback_db: Path | None) -> None:
    """Re-encrypt every stored model (and, with --feedback-db, the feedback log's user ids) under a
    new data key, re-sign the models, then retire the old key."""
    rows: list[int] = []

    def reencrypt(keyring: DataKeyring, new_key: DataKey) -> None:
        if feedback_db is not None:
            from recdrill.serving.feedback.crypto import reencrypt_feedback  # only this option needs it

            rows.append(reencrypt_feedback(feedback_db, keyring, new_key))

    rotation = open_registry(home).rotate_data_key(before_finish=reencrypt)
    click.echo(f"re-encrypted {len(rotation.versions)} artifact(s); data key is now {rotation.new_key_id}")
    if feedback_db is not None:
        click.echo(f"re-encrypted the user ids of {sum(rows)} feedback row(s) in {feedback_db}")


# API keys with roles (create, revoke, list, audit) live beside the key material commands.
for _command in API_KEY_COMMANDS:
    keys.add_command(_command)
from recdrill.cli.tls import tls_selfsigned_command  # noqa: E402  (the TLS certificate for HTTPS serving)

keys.add_command(tls_selfsigned_command)
