"""Chaos Toolkit probes: a deployment's health as plain numbers, judged by the experiment's tolerances.

Each probe sends a small sample of ``/v1/recommend`` requests (sequentially, from this process) or
reads the admin API, and returns a number or a string, so tolerances stay in Chaos Toolkit's own
syntax: ``{"type": "range", "range": [0.99, 1.0]}`` for :func:`availability`, ``0`` for
:func:`active_faults`. Requests go to ``user_ids`` in turn (anonymous requests, served from
popularity, when none are given: name known users to exercise the primary model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from recdrill.chaos.target import ADMIN_KEY_ENV, DEFAULT_BASE_URL, admin_key_from_env, drill_target
from recdrill.contract import API_KEY_HEADER
from recdrill.drills.cleanliness import leftovers
from recdrill.drills.retry import is_retriable_error, is_retriable_status
from recdrill.errors import ConfigError
from recdrill.security.tls import client_ssl_context

__all__ = ["active_faults", "availability", "fallback_share", "leftover_faults", "p99_ms", "served_version"]

MAX_REQUESTS = 10_000


@dataclass(frozen=True)
class _Answer:
    ok: bool
    latency_ms: float
    served_by: str | None
    retryable: bool = False  # failed in a way a retry may fix


def availability(
    base_url: str = DEFAULT_BASE_URL,
    requests: int = 50,
    user_ids: Sequence[str] | None = None,
    k: int = 10,
    timeout_s: float = 2.0,
    retry: bool = False,
    api_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
) -> float:
    """Share of ``requests`` recommendation requests answered with a 2xx status (0..1).

    ``retry`` retries a failed request once (connection lost, 502/503/504), as a resilient client
    does; without it this is the drill's ``availability_first_try``.
    """
    answers = _sample(base_url, requests, user_ids, k, timeout_s, retry, api_key_env, ca_bundle)
    return sum(a.ok for a in answers) / len(answers)


def p99_ms(
    base_url: str = DEFAULT_BASE_URL,
    requests: int = 50,
    user_ids: Sequence[str] | None = None,
    k: int = 10,
    timeout_s: float = 2.0,
    api_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
) -> float:
    """99th percentile of the client-side latency in milliseconds (failed requests count as answered
    when they failed: a timeout counts as ``timeout_s``)."""
    answers = _sample(base_url, requests, user_ids, k, timeout_s, False, api_key_env, ca_bundle)
    return round(float(np.percentile([a.latency_ms for a in answers], 99)), 3)


def fallback_share(
    base_url: str = DEFAULT_BASE_URL,
    requests: int = 50,
    user_ids: Sequence[str] | None = None,
    primary_tier: str = "primary",
    k: int = 10,
    timeout_s: float = 2.0,
    api_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
) -> float:
    """Share of successful answers not served by ``primary_tier`` (0..1; 1.0 when none succeeded)."""
    answers = _sample(base_url, requests, user_ids, k, timeout_s, False, api_key_env, ca_bundle)
    served = [a.served_by for a in answers if a.ok]
    if not served:
        return 1.0
    return sum(tier != primary_tier for tier in served) / len(served)


def leftover_faults(
    base_url: str = DEFAULT_BASE_URL,
    admin_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
    state_dir: str | None = None,
    model_dir: str | None = None,
    server_pid: int | None = None,
    local: bool = False,
) -> list[str]:
    """Everything of any catalogue fault type still active on the target, plus the server's own
    fault table (``/admin/faults``), sorted and without repeats.

    Fault types whose leftovers need something this probe was not given (``state_dir``, ``local``,
    ...) are not checked; a fault type whose check fails counts as a leftover naming the failure,
    since "could not check" is not "clean".
    """
    target = drill_target(
        base_url,
        admin_key_env,
        ca_bundle=ca_bundle,
        state_dir=state_dir,
        model_dir=model_dir,
        server_pid=server_pid,
        local=local,
    )
    return sorted(leftovers(target))


def active_faults(
    base_url: str = DEFAULT_BASE_URL,
    admin_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
    state_dir: str | None = None,
    model_dir: str | None = None,
    server_pid: int | None = None,
    local: bool = False,
) -> int:
    """How many faults are still active (see :func:`leftover_faults`); 0 is clean."""
    return len(leftover_faults(base_url, admin_key_env, ca_bundle, state_dir, model_dir, server_pid, local))


def served_version(
    base_url: str = DEFAULT_BASE_URL, api_key_env: str = ADMIN_KEY_ENV, ca_bundle: str | None = None
) -> str | None:
    """The model version ``/readyz`` says is served; None when the server does not answer ready."""
    target = drill_target(base_url, api_key_env, ca_bundle=ca_bundle, key_required=False)
    return target.model_version()


def _sample(
    base_url: str,
    requests: int,
    user_ids: Sequence[str] | None,
    k: int,
    timeout_s: float,
    retry: bool,
    api_key_env: str,
    ca_bundle: str | None,
) -> list[_Answer]:
    """Send ``requests`` recommendation requests one after another and record each outcome."""
    if isinstance(requests, bool) or not isinstance(requests, int) or not 1 <= requests <= MAX_REQUESTS:
        raise ConfigError(f"requests must be a whole number from 1 to {MAX_REQUESTS}, got {requests!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
        raise ConfigError(f"k must be a whole number from 1 to 100, got {k!r}")
    if not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 60:
        raise ConfigError(f"timeout_s must be a number of seconds in (0, 60], got {timeout_s!r}")
    if isinstance(user_ids, str) or (user_ids is not None and not all(isinstance(u, str) for u in user_ids)):
        raise ConfigError("user_ids must be a list of user id strings")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    users = list(user_ids or [])
    key = admin_key_from_env(api_key_env, required=False)
    # Reader endpoints are open without a key store; with one, the operator key includes the reader role.
    headers = {API_KEY_HEADER: key} if key else {}
    answers = []
    verify = client_ssl_context(ca_bundle)
    url = base_url.rstrip("/")
    with httpx.Client(base_url=url, headers=headers, timeout=timeout_s, verify=verify) as client:
        for i in range(requests):
            body: dict[str, Any] = {"k": k}
            if users:
                body["user_id"] = users[i % len(users)]
            answer = _one(client, body)
            if retry and answer.retryable:
                again = _one(client, body)
                answer = _Answer(again.ok, answer.latency_ms + again.latency_ms, again.served_by)
            answers.append(answer)
    return answers


def _one(client: httpx.Client, body: dict[str, Any]) -> _Answer:
    started = time.perf_counter()
    try:
        response = client.post("/v1/recommend", json=body)
    except httpx.HTTPError as exc:
        latency = (time.perf_counter() - started) * 1000
        return _Answer(False, latency, None, retryable=is_retriable_error(exc))
    latency = (time.perf_counter() - started) * 1000
    if 200 <= response.status_code < 300:
        return _Answer(True, latency, str(response.json().get("served_by")))
    # The drill's replayer's rule (recdrill.drills.retry): other statuses would answer the same.
    return _Answer(False, latency, None, retryable=is_retriable_status(response.status_code))
