"""Retry once: the one rule by which the drill's replayer and the Chaos Toolkit probes resend a
failed ``/v1/recommend`` request (a resilient client's behaviour, measured, not a resilience layer).

A request is worth one more try when no answer came back because the connection failed (refused,
reset, closed before a response), or when the answer was 502, 503 or 504 (a gateway or a server
that could not take it now). A timeout is not: the server may still be working on the first
request, and resending doubles the load on a server that is already slow. Any other status would
come back the same. ``/v1/recommend`` is idempotent, so a retry changes nothing on the server.

Both callers record the first attempt's status beside the final one, so ``availability`` (with the
retry) and ``availability_first_try`` (without) come from the same requests.

Example:
    >>> import httpx
    >>> is_retriable_status(503), is_retriable_status(429)
    (True, False)
    >>> is_retriable_error(httpx.ConnectError("refused")), is_retriable_error(httpx.ReadTimeout("slow"))
    (True, False)
"""

from __future__ import annotations

import httpx

RETRY_STATUSES = frozenset({502, 503, 504})


def is_retriable_status(status: int) -> bool:
    """An answer with this status is worth one more try."""
    return status in RETRY_STATUSES


def is_retriable_error(error: httpx.HTTPError) -> bool:
    """A request that failed with ``error`` (no answer at all) is worth one more try."""
    return not isinstance(error, httpx.TimeoutException)
