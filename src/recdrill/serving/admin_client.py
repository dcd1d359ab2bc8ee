"""One admin call to a running recdrill server, for the CLI and for library callers alike.

``recdrill registry promote --canary`` and the automatic drift response
(``recdrill.monitor.response``) both start a canary with ``POST /admin/models/canary``; the call, its
key header and its error mapping live here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recdrill.contract import API_KEY_HEADER
from recdrill.errors import ConfigError, RecdrillError

TIMEOUT_S = 60.0  # a canary start verifies and loads a model: seconds, not milliseconds


def admin_request(
    method: str,
    target: str | None,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    admin_key: str | None,
    ca_bundle: str | Path | None = None,
) -> Any:
    """Send ``method path`` with ``body`` to the server at ``target``; its JSON answer.

    Raises:
        ConfigError: no ``target`` or no ``admin_key``.
        RecdrillError: the server could not be reached, or answered an error (its ``error`` quoted).

    Example:
        >>> admin_request("GET", None, "/admin/models/canary", admin_key="k")
        Traceback (most recent call last):
        ...
        recdrill.errors.ConfigError: --target URL is needed: which server runs the canary?
    """
    import httpx

    from recdrill.security.tls import client_ssl_context
    from recdrill.serving.config import ENV_ADMIN_KEY

    if not target:
        raise ConfigError("--target URL is needed: which server runs the canary?")
    if not admin_key:
        raise ConfigError(f"{ENV_ADMIN_KEY} is not set: canary calls need an admin (or operator) key")
    try:
        with httpx.Client(
            base_url=target.rstrip("/"), timeout=TIMEOUT_S, verify=client_ssl_context(ca_bundle)
        ) as client:
            response = client.request(method, path, json=body, headers={API_KEY_HEADER: admin_key})
    except httpx.HTTPError as exc:
        raise RecdrillError(f"{target}: {type(exc).__name__}: {exc}") from exc
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": response.text[:200]}
    if not response.is_success:
        error = payload.get("error") if isinstance(payload, dict) else payload
        raise RecdrillError(f"{method} {path}: {response.status_code}: {error}")
    return payload
