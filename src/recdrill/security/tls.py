"""TLS: a development certificate made offline, and the settings servers and clients use it with.

``make_dev_certificate`` writes a tiny certificate authority and one server certificate signed by
it, with ``cryptography`` and no network. Why a CA plus a leaf rather than one self-signed
certificate: clients pin the CA (``ca.pem``, the ``--ca-bundle``), so the server's certificate can
be re-issued without touching them; and strict verifiers (browsers, Go, Java, Python 3.13's
``VERIFY_X509_STRICT``) reject a certificate that is both a CA and a server's end-entity
certificate, or a trust anchor without the key-usage and key-identifier extensions. The CA's private
key is never written: it signs the one leaf and is dropped, so no file left behind can mint more
certificates that these clients would trust (run the command again for a new pair).

Clients never switch verification off: :func:`client_ssl_context` checks the chain and the host
name against the CA bundle it is given, or against the system store (OpenSSL's default paths,
which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` override) when given none.

Example::

    >>> import tempfile, pathlib
    >>> files = make_dev_certificate(pathlib.Path(tempfile.mkdtemp()), ["127.0.0.1", "localhost"])
    >>> certificate_hosts(files.cert), oct(files.key.stat().st_mode & 0o777)
    (['127.0.0.1', 'localhost'], '0o600')
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from recdrill._home import write_private
from recdrill.errors import ConfigError

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
DEFAULT_DAYS = 90
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "key.pem"
CLOCK_SKEW = dt.timedelta(minutes=5)  # valid from a little before now: hosts' clocks differ


@dataclass(frozen=True)
class TlsFiles:
    """What :func:`make_dev_certificate` wrote: ``ca_cert`` for clients (``--ca-bundle``), ``cert``
    and ``key`` for the server (``--tls-cert``, ``--tls-key``; the key is mode 0600)."""

    ca_cert: Path
    cert: Path
    key: Path


def make_dev_certificate(
    out_dir: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = DEFAULT_DAYS,
    *,
    overwrite: bool = False,
) -> TlsFiles:
    """Write ``ca.pem``, ``cert.pem`` (for every name and address in ``hosts``) and ``key.pem``.

    Raises:
        ConfigError: ``hosts`` is empty or holds an unusable name, ``days`` is not positive, or the
            files exist and ``overwrite`` is false (a running server may be using them).
    """
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days}")
    names = subject_alt_names(hosts)
    files = TlsFiles(out_dir / CA_FILE, out_dir / CERT_FILE, out_dir / KEY_FILE)
    existing = [p for p in (files.ca_cert, files.cert, files.key) if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} already exists (pass --force to replace the certificate)")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"recdrill development CA {secrets.token_hex(4)}")]
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])])
    leaf_cert = (
        _builder(leaf_name, ca_name, leaf_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(files.key, key_pem)
    _write_public(files.cert, leaf_cert.public_bytes(serialization.Encoding.PEM))
    _write_public(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    return files


def subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """An IP address entry for each address in ``hosts`` and a DNS entry for each name.

    Raises:
        ConfigError: no hosts, or one that is empty, has spaces or is not ASCII.
    """
    if not hosts:
        raise ConfigError("a certificate needs at least one host name or IP address")
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not host or not host.isascii() or any(c.isspace() for c in host) or "/" in host:
            raise ConfigError(f"host {host!r} is neither an IP address nor a DNS name (use punycode)")
        names.append(x509.DNSName(host.lower()))
    return names


def certificate_hosts(path: Path) -> list[str]:
    """The names and addresses a PEM certificate is valid for (its subject alternative names)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in san]


def client_ssl_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """A client context that verifies the server's chain and host name: against ``ca_bundle`` alone
    (a PEM file, as curl's ``--cacert``), or the system store when it is None. Build it once and
    share it: loading a store costs milliseconds.

    Raises:
        ConfigError: ``ca_bundle`` cannot be read or holds no certificate.
    """
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{ca_bundle}: not a readable PEM CA bundle ({_reason(exc)})") from exc


def validate_server_files(cert: Path, key: Path) -> None:
    """Check that ``cert`` and ``key`` load as a pair and that the certificate has not expired, so
    that ``serve`` fails with one line instead of in every worker, or at every client.

    Raises:
        ConfigError: a file is missing or not PEM, the key does not match, or the certificate expired.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{cert} with {key}: cannot serve TLS ({_reason(exc)})") from exc
    if leaf.not_valid_after_utc < dt.datetime.now(dt.UTC):
        raise ConfigError(f"{cert}: the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")


def is_verification_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (say an ``httpx.ConnectError``) was caused by a certificate the client could
    not verify: retrying will not help, unlike a refused or reset connection."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl; bounded in case of a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    """Created 0600 before a byte is written (never readable by others, even briefly), then
    renamed over ``path``."""
    write_private(path, data, durable=False, private_folder=False)


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
