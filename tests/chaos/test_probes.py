"""The Chaos Toolkit probes against a live server, before and while a fault is active."""

from __future__ import annotations

import pytest

from recdrill.chaos import actions, probes
from recdrill.errors import ConfigError
from recdrill.serving.runtime.local_process import ServerProcess
from tests.chaos.conftest import USERS


def test_a_healthy_server(server: ServerProcess) -> None:
    assert probes.availability(server.url, requests=20, user_ids=USERS) == 1.0
    assert probes.availability(server.url, requests=5) == 1.0  # anonymous users are answered too
    assert 0 < probes.p99_ms(server.url, requests=20, user_ids=USERS) < 2000
    assert probes.fallback_share(server.url, requests=20, user_ids=USERS) <= 0.1
    assert probes.active_faults(server.url) == 0 and probes.leftover_faults(server.url) == []
    version = probes.served_version(server.url)
    assert isinstance(version, str) and version


def test_probes_see_a_slow_ranker(server: ServerProcess) -> None:
    actions.inject_fault("ranker-latency", {"latency_ms": 400, "ttl_s": 60}, server.url, fault_id="slow")
    try:
        (leftover,) = probes.leftover_faults(server.url)
        assert leftover.startswith("ranker/latency (")
        assert probes.active_faults(server.url) == 1
        # The chain gives up on the slow primary: answers keep coming, from the fallback tiers.
        assert probes.availability(server.url, requests=10, user_ids=USERS, retry=True) == 1.0
        assert probes.fallback_share(server.url, requests=10, user_ids=USERS) >= 0.9
    finally:
        actions.revert_fault("slow")
    assert probes.active_faults(server.url) == 0


def test_an_unreachable_server_is_unavailable_and_not_clean(server: ServerProcess, unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}"
    assert probes.availability(url, requests=3, timeout_s=1.0, retry=True) == 0.0
    assert probes.served_version(url) is None
    assert probes.leftover_faults(url) == ["cannot list the server's faults: ConnectError"]
    assert probes.active_faults(url) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 0}, "requests must be a whole number from 1 to 10000"),
        ({"k": 500}, "k must be a whole number from 1 to 100"),
        ({"user_ids": "U-000001"}, "user_ids must be a list"),
        ({"timeout_s": 0}, r"timeout_s must be a number of seconds in \(0, 60\]"),
    ],
)
def test_bad_arguments_are_named(server: ServerProcess, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        probes.availability(server.url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
