"""admin_request against a tiny standard-library HTTP server that answers fixed JSON."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from recdrill.errors import ConfigError, RecdrillError
from recdrill.serving.admin_client import admin_request

# path -> (status, body bytes, content type)
ANSWERS: dict[str, tuple[int, bytes, str]] = {
    "/admin/models/canary": (200, b'{"status": "started", "version": "v2"}', "application/json"),
    "/admin/conflict": (409, b'{"error": "a canary is already running"}', "application/json"),
    "/admin/listed": (500, b'["not", "an", "object"]', "application/json"),
    "/admin/html": (502, b"<html>bad gateway</html>" + b"x" * 400, "text/html"),
}


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "key": self.headers.get("X-API-Key"),
                "body": json.loads(body) if body else None,
            }
        )
        status, payload, kind = ANSWERS.get(
            self.path, (404, b'{"error": "no such route"}', "application/json")
        )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def forget_requests() -> None:
    Handler.seen.clear()


@pytest.mark.parametrize("target", [None, ""])
def test_a_target_is_required(target: str | None) -> None:
    with pytest.raises(ConfigError, match="--target URL is needed: which server runs the canary"):
        admin_request("GET", target, "/admin/models/canary", admin_key="k")


@pytest.mark.parametrize("key", [None, ""])
def test_an_admin_key_is_required(server: str, key: str | None) -> None:
    with pytest.raises(ConfigError, match="RECDRILL_ADMIN_KEY is not set: canary calls need an admin"):
        admin_request("GET", server, "/admin/models/canary", admin_key=key)
    assert Handler.seen == []  # refused before any request went out


def test_the_call_sends_method_body_and_key_and_returns_the_json(server: str) -> None:
    body = {"version": "v2", "share": 0.1}
    answer = admin_request("POST", server + "/", "/admin/models/canary", body, admin_key="secret")
    assert answer == {"status": "started", "version": "v2"}
    assert Handler.seen == [{"method": "POST", "path": "/admin/models/canary", "key": "secret", "body": body}]


def test_a_call_without_body_sends_none(server: str) -> None:
    assert admin_request("DELETE", server, "/admin/models/canary", admin_key="k")["status"] == "started"
    assert Handler.seen[0]["method"] == "DELETE" and Handler.seen[0]["body"] is None


def test_an_error_answer_quotes_the_servers_error(server: str) -> None:
    with pytest.raises(RecdrillError, match=r"^POST /admin/conflict: 409: a canary is already running$"):
        admin_request("POST", server, "/admin/conflict", {}, admin_key="k")
    with pytest.raises(RecdrillError, match=r"^GET /admin/listed: 500: \['not', 'an', 'object'\]$"):
        admin_request("GET", server, "/admin/listed", admin_key="k")


def test_an_error_that_is_not_json_is_quoted_in_its_first_200_characters(server: str) -> None:
    with pytest.raises(RecdrillError) as caught:
        admin_request("GET", server, "/admin/html", admin_key="k")
    message = str(caught.value)
    assert message.startswith("GET /admin/html: 502: <html>bad gateway</html>xxx")
    assert message == "GET /admin/html: 502: " + ("<html>bad gateway</html>" + "x" * 400)[:200]


def test_an_unreachable_server_is_a_recdrill_error_naming_the_target() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = f"http://127.0.0.1:{port}"
    with pytest.raises(RecdrillError, match=f"^{target}: ConnectError: ") as caught:
        admin_request("GET", target, "/admin/models/canary", admin_key="k")
    assert not isinstance(caught.value, ConfigError)


def test_a_missing_ca_bundle_is_a_config_error(server: str) -> None:
    with pytest.raises(ConfigError, match="not a readable PEM CA bundle"):
        admin_request("GET", server, "/admin/models/canary", admin_key="k", ca_bundle="/nonexistent/ca.pem")
