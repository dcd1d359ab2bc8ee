"""``recdrill keys tls-selfsigned``: a development CA and server certificate for HTTPS serving.

Prints the paths and how to use them, never key material. See :mod:`recdrill.security.tls` for why
the command makes a tiny CA plus a server certificate rather than one self-signed certificate.
"""

from __future__ import annotations

from pathlib import Path

import click

from recdrill.security.tls import DEFAULT_DAYS, DEFAULT_HOSTS, certificate_hosts, make_dev_certificate


@click.command("tls-selfsigned")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for ca.pem, cert.pem and key.pem (key.pem is mode 0600).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=DEFAULT_HOSTS,
    show_default=True,
    help="A DNS name or IP address the server is reached at; repeat for more.",
)
@click.option("--days", default=DEFAULT_DAYS, show_default=True, type=click.IntRange(1, 3650))
@click.option("--force", is_flag=True, help="Replace the files if they exist.")
def tls_selfsigned_command(out_dir: Path, hosts: tuple[str, ...], days: int, force: bool) -> None:
    """Make a development certificate authority and a server certificate signed by it (offline).

    Serve with --tls-cert OUT/cert.pem --tls-key OUT/key.pem; give clients --ca-bundle OUT/ca.pem.
    The CA's private key is not kept: rerun the command for a new certificate."""
    files = make_dev_certificate(out_dir, hosts, days, overwrite=force)
    click.echo(f"created {files.ca_cert} (CA certificate: clients' --ca-bundle)")
    click.echo(f"created {files.cert} (server certificate for {', '.join(certificate_hosts(files.cert))})")
    click.echo(f"created {files.key} (server private key, mode 0600)")
    click.echo(
        f"serve: recdrill serve --tls-cert {files.cert} --tls-key {files.key} ...; "
        f"drill: recdrill drill --ca-bundle {files.ca_cert} ...",
        err=True,
    )
