"""Token buckets per key, on a fake clock so the figures are exact."""

from __future__ import annotations

import pytest

from recdrill.errors import ConfigError
from recdrill.security.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_then_waits_for_tokens_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=4.0, burst=3, clock=clock)
    assert [limiter.wait_s("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_s("k") == pytest.approx(0.25)  # one token takes 1/4 s
    clock.now += 0.25
    assert limiter.wait_s("k") == 0.0 and limiter.wait_s("k") == pytest.approx(0.25)
    clock.now += 10.0  # a long pause refills to the burst, no further
    assert [limiter.wait_s("k") for _ in range(4)][-1] == pytest.approx(0.25)


def test_keys_have_separate_buckets_and_may_carry_their_own_limits() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert limiter.wait_s("a") == 0.0 and limiter.wait_s("a") == pytest.approx(1.0)
    assert limiter.wait_s("b") == 0.0  # a's exhaustion does not touch b
    assert [limiter.wait_s("big", rate_per_s=10.0, burst=5) for _ in range(6)][-1] == pytest.approx(0.1)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="rate limit must be positive"):
        RateLimiter(rate_per_s=0.0, burst=1)
    with pytest.raises(ConfigError, match="rate limit must be positive"):
        RateLimiter(rate_per_s=1.0, burst=0)
