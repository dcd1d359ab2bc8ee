"""The retry-once rule: which statuses and which transport errors are worth one more try."""

from __future__ import annotations

import httpx
import pytest

from recdrill.drills.retry import RETRY_STATUSES, is_retriable_error, is_retriable_status
from tests.drills.test_target import closed_port_url

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/recommend")


def test_only_gateway_and_unavailable_answers_are_retried() -> None:
    assert frozenset({502, 503, 504}) == RETRY_STATUSES
    assert [s for s in range(100, 600) if is_retriable_status(s)] == [502, 503, 504]


@pytest.mark.parametrize("status", [200, 400, 404, 422, 429, 500, 501, 505])
def test_other_statuses_would_come_back_the_same(status: int) -> None:
    assert not is_retriable_status(status)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused", request=REQUEST),
        httpx.ReadError("reset by peer", request=REQUEST),
        httpx.RemoteProtocolError("closed before a response", request=REQUEST),
        httpx.WriteError("broken pipe", request=REQUEST),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_request_that_got_no_answer_is_retried(error: httpx.HTTPError) -> None:
    assert is_retriable_error(error)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("slow", request=REQUEST),
        httpx.ConnectTimeout("slow to accept", request=REQUEST),
        httpx.WriteTimeout("slow to read", request=REQUEST),
        httpx.PoolTimeout("no connection free", request=REQUEST),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_timeout_is_not_retried(error: httpx.HTTPError) -> None:
    assert not is_retriable_error(error)


def test_against_a_closed_port_the_error_is_one_to_retry() -> None:
    with pytest.raises(httpx.HTTPError) as caught:
        httpx.post(closed_port_url() + "/v1/recommend", json={"user_id": "u"}, timeout=5.0)
    assert is_retriable_error(caught.value)
