"""HTTPS serving with a development certificate: real ``recdrill serve`` processes on loopback, real
TLS handshakes, verification always on."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from recdrill.cli import main
from recdrill.contract import WORKER_HEADER
from recdrill.errors import ConfigError, ServerStartError
from recdrill.security.tls import (
    TlsFiles,
    certificate_hosts,
    client_ssl_context,
    is_verification_failure,
    make_dev_certificate,
    validate_server_files,
)
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=300,n_users=200,n_events=3000"
USER = {"user_id": "U-000001", "k": 5}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tls-model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_dev_certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "localhost"])


@pytest.fixture(scope="module")
def server(
    model_dir: Path, tls: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("tls-state")
    with ServerProcess(
        model_dir, state, tls_cert=tls.cert, tls_key=tls.key, ca_bundle=tls.ca_cert
    ) as running:
        yield running


def test_a_client_with_the_ca_bundle_gets_answers_over_https(server: ServerProcess, tls: TlsFiles) -> None:
    assert server.url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=server.url, verify=client_ssl_context(tls.ca_cert)) as client:
        assert client.get("/readyz").status_code == 200
        response = client.post("/v1/recommend", json=USER)
    assert response.status_code == 200 and len(response.json()["items"]) == 5


def test_the_same_client_without_the_bundle_fails_certificate_verification(server: ServerProcess) -> None:
    for verify in (client_ssl_context(), True):  # the system store, and httpx's own default (certifi)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED") as failure:
            httpx.get(server.url + "/readyz", verify=verify)
        assert is_verification_failure(failure.value)


def test_a_bundle_of_another_ca_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    stranger = make_dev_certificate(tmp_path, ["127.0.0.1"])  # same hosts, different CA
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url + "/readyz", verify=client_ssl_context(stranger.ca_cert))


def test_plain_http_to_the_tls_port_gets_no_answer(server: ServerProcess) -> None:
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(plain + "/readyz", timeout=5.0)


def test_a_server_process_without_the_bundle_stops_at_once(
    model_dir: Path, tls: TlsFiles, tmp_path: Path
) -> None:
    process = ServerProcess(model_dir, tmp_path / "state", tls_cert=tls.cert, tls_key=tls.key)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="certificate not trusted"):
        process.start()
    assert time.monotonic() - started < 30  # not the 60 s ready timeout: waiting would not help
    assert process._process is not None and process._process.poll() is not None  # and it was stopped


def test_two_workers_serve_https(model_dir: Path, tls: TlsFiles, tmp_path: Path) -> None:
    with ServerProcess(
        model_dir, tmp_path / "state", workers=2, tls_cert=tls.cert, tls_key=tls.key, ca_bundle=tls.ca_cert
    ) as server:
        pids = server.worker_pids()
        # start() returned only after every worker answered /readyz over TLS; ask each again.
        assert server.answering_pids(set(pids), timeout_s=30) == set(pids)
        response = httpx.post(server.url + "/v1/recommend", json=USER, verify=server.verify, timeout=10)
    assert response.status_code == 200 and int(response.headers[WORKER_HEADER]) in pids


def test_host_names_are_checked_as_well_as_the_chain(tmp_path: Path) -> None:
    files = make_dev_certificate(tmp_path, ["recdrill.test"])
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.cert, files.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def handshake_twice() -> None:
            for _ in range(2):
                connection, _ = listener.accept()
                try:
                    server_context.wrap_socket(connection, server_side=True).close()
                except (ssl.SSLError, OSError):
                    connection.close()  # the refused client's alert

        thread = threading.Thread(target=handshake_twice, daemon=True)
        thread.start()
        client = client_ssl_context(files.ca_cert)
        client.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 turns on by default
        address = listener.getsockname()
        for host, ok in (("recdrill.test", True), ("other.test", False)):
            with socket.create_connection(address) as raw:
                if ok:
                    client.wrap_socket(raw, server_hostname=host).close()
                else:
                    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                        client.wrap_socket(raw, server_hostname=host)
        thread.join(timeout=10)


def test_keys_tls_selfsigned_writes_sans_a_ca_chain_and_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tls"
    hosts = ["--host", "127.0.0.1", "--host", "localhost", "--host", "::1", "--host", "Shop.Example"]
    assert main(["keys", "tls-selfsigned", "--out", str(out), *hosts, "--days", "7"]) == 0
    leaf = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "shop.example"]
    assert certificate_hosts(out / "cert.pem") == ["127.0.0.1", "localhost", "::1", "shop.example"]
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    assert not list(out.glob(".*"))  # no temporary file left behind
    assert "PRIVATE KEY" not in capsys.readouterr().out

    leaf.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 7 * 86400 <= lifetime.total_seconds() <= 7 * 86400 + 600
    validate_server_files(out / "cert.pem", out / "key.pem")

    old_key = (out / "key.pem").read_bytes()
    assert main(["keys", "tls-selfsigned", "--out", str(out)]) == 2  # never replaced by accident
    assert "already exists" in capsys.readouterr().err
    assert (out / "key.pem").read_bytes() == old_key
    assert main(["keys", "tls-selfsigned", "--out", str(out), "--force"]) == 0
    assert (out / "key.pem").read_bytes() != old_key


@pytest.mark.parametrize("host", ["", "two words", "bücher.example"])
def test_unusable_host_names_are_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither an IP address nor a DNS name"):
        make_dev_certificate(tmp_path, [host])
    assert not (tmp_path / "key.pem").exists()


def test_serve_refuses_bad_tls_options_before_loading_anything(
    tmp_path: Path, tls: TlsFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_dev_certificate(tmp_path / "other", ["127.0.0.1"])
    serve = ["serve", "--model", str(tmp_path / "no-model")]
    cert, key = ["--tls-cert", str(tls.cert)], ["--tls-key", str(tls.key)]

    assert main([*serve, *cert]) == 2
    assert "give both or neither" in capsys.readouterr().err
    assert main([*serve, *cert, *key, "--backend", "ray"]) == 2
    assert "Ray Serve terminates TLS" in capsys.readouterr().err
    assert main([*serve, *cert, "--tls-key", str(other.key)]) == 2  # a key that is not the cert's
    err = capsys.readouterr().err
    assert "cannot serve TLS" in err and len(err.strip().splitlines()) == 1
    assert main([*serve, "--tls-cert", str(tls.ca_cert.parent / "missing.pem"), *key]) == 2
    assert "cannot serve TLS" in capsys.readouterr().err


def test_a_ca_bundle_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="not a readable PEM CA bundle"):
        client_ssl_context(bundle)
