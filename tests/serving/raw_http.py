"""Hand-made HTTP for tests that must misbehave as a hostile client does: partial headers, bodies that
never finish, no Host header. httpx cannot send those."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def connect(url: str, timeout_s: float = 30.0) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout_s)
    sock.settimeout(timeout_s)
    return sock


def request_head(method: str, path: str, headers: dict[str, str], version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the socket times out)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        pass
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of the first response in ``answer`` (0 if there is none)."""
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else 0


def send_once(url: str, data: bytes, timeout_s: float = 30.0) -> bytes:
    """Send ``data`` on a new connection, half-close it, and return the whole answer."""
    with connect(url, timeout_s) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return read_answer(sock)
