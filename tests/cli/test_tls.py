"""``recdrill keys tls-selfsigned``: a dev CA and server certificate, paths printed, never key material."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from recdrill.cli import main
from recdrill.security.tls import certificate_hosts, client_ssl_context, validate_server_files


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", "tls-selfsigned", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_makes_ca_cert_and_private_key_and_prints_their_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "tls"
    code, out, err = run(capsys, "--out", str(out_dir))
    ca, cert, key = out_dir / "ca.pem", out_dir / "cert.pem", out_dir / "key.pem"
    assert code == 0
    assert out.splitlines() == [
        f"created {ca} (CA certificate: clients' --ca-bundle)",
        f"created {cert} (server certificate for 127.0.0.1, localhost)",
        f"created {key} (server private key, mode 0600)",
    ]
    assert f"--tls-cert {cert} --tls-key {key}" in err and f"--ca-bundle {ca}" in err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in out + err
    validate_server_files(cert, key)  # a pair a server can load
    client_ssl_context(ca)  # a bundle a client can load


def test_hosts_and_days_go_into_the_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "tls"
    args = ["--out", str(out_dir), "--host", "shop.internal", "--host", "10.0.0.7", "--days", "7"]
    code, out, _ = run(capsys, *args)
    assert code == 0 and "server certificate for shop.internal, 10.0.0.7" in out
    assert certificate_hosts(out_dir / "cert.pem") == ["shop.internal", "10.0.0.7"]
    leaf = x509.load_pem_x509_certificate((out_dir / "cert.pem").read_bytes())
    lifetime = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6) < lifetime <= dt.timedelta(days=7, minutes=5)


def test_existing_files_are_kept_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "tls"
    assert run(capsys, "--out", str(out_dir))[0] == 0
    first = {name: (out_dir / name).read_bytes() for name in ("ca.pem", "cert.pem", "key.pem")}
    code, out, err = run(capsys, "--out", str(out_dir))
    assert (code, out) == (2, "")
    assert err.startswith("recdrill: error: ") and "already exists (pass --force" in err
    assert err.count("\n") == 1
    assert {name: (out_dir / name).read_bytes() for name in first} == first
    assert run(capsys, "--out", str(out_dir), "--force")[0] == 0
    assert all((out_dir / name).read_bytes() != data for name, data in first.items())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "Invalid value for '--days'"),
        (["--days", "3651"], "Invalid value for '--days'"),
        ([], "Missing option '--out'"),
    ],
)
def test_bad_options_are_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = args if not args or args[0] != "--days" else ["--out", str(tmp_path / "tls"), *args]
    code, out, err = run(capsys, *full)
    assert (code, out) == (2, "") and message in err
    assert not (tmp_path / "tls").exists()


def test_a_host_that_is_no_name_or_address_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--out", str(tmp_path / "tls"), "--host", "not a host!")
    assert (code, out) == (2, "")
    assert err == (
        "recdrill: error: host 'not a host!' is neither an IP address nor a DNS name (use punycode)\n"
    )
    assert not (tmp_path / "tls" / "key.pem").exists()
