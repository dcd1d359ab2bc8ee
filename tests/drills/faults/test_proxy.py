"""The loopback proxy in front of a real recdrill server: it forwards, and its toxics add latency,
drop requests and reset connections, each undone by removing it; stop() leaves nothing behind."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recdrill.cli import main
from recdrill.drills.faults.proxy import LoopbackProxy
from recdrill.errors import ConfigError, ProxyError
from recdrill.security.tls import TlsFiles, make_dev_certificate
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=600,n_users=500,n_events=10000"
KEY = "proxy-test-key"
HEADERS = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proxy") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(model_dir, model_dir.parent / "state", admin_key=KEY) as running:
        yield running


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[LoopbackProxy]:
    with LoopbackProxy(server.url, seed=7) as running:
        yield running


def recommend(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/recommend", json={"user_id": "proxy-user", "k": 5}, headers=HEADERS)


def timed(client: httpx.Client) -> float:
    start = time.perf_counter()
    assert recommend(client).status_code == 200
    return time.perf_counter() - start


def test_it_forwards_health_and_recommendations(proxy: LoopbackProxy, server: ServerProcess) -> None:
    assert proxy.url.startswith("http://127.0.0.1:") and proxy.url != server.url
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        direct = httpx.post(
            server.url + "/v1/recommend", json={"user_id": "proxy-user", "k": 5}, headers=HEADERS
        )
        through = recommend(client)
    assert through.status_code == 200
    assert through.json()["items"] == direct.json()["items"]
    counters = proxy.counters()
    # One keep-alive connection carried both requests.
    assert counters["connections"] == 1
    assert counters["bytes_up"] > 100 and counters["bytes_down"] > 200
    assert counters["dropped"] == counters["reset"] == 0


def test_latency_toxic_delays_each_response_and_goes_away(proxy: LoopbackProxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        timed(client)  # warm: connection open, worker's first-call costs paid
        toxic = proxy.add_toxic("latency", latency_ms=300, jitter_ms=20)
        slow = [timed(client) for _ in range(4)]
        assert proxy.remove_toxic(toxic)
        fast = [timed(client) for _ in range(4)]
    assert min(slow) >= 0.28  # 300 - 20 ms jitter at worst
    # Removed: back under the latency (a busy machine may still add a little).
    assert min(fast) < 0.25
    stats = proxy.toxic(toxic)
    assert stats is not None and not stats["active"] and stats["hits"] >= 4
    assert not proxy.remove_toxic(toxic)  # already gone


def test_drop_fails_requests_without_response_until_removed(proxy: LoopbackProxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        timed(client)  # the failure must also hit a reused keep-alive connection
        toxic = proxy.add_toxic("drop", rate=1.0)
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                recommend(client)
        assert proxy.remove_toxic(toxic)
        assert recommend(client).status_code == 200
        never = proxy.add_toxic("drop", rate=0.0)
        assert all(recommend(client).status_code == 200 for _ in range(3))
        proxy.remove_toxic(never)
    assert proxy.counters()["dropped"] == 3
    dropped, passed = proxy.toxic(toxic), proxy.toxic(never)
    assert dropped is not None and (dropped["seen"], dropped["hits"]) == (3, 3)
    assert passed is not None and (passed["seen"], passed["hits"]) == (3, 0)


def test_reset_fails_requests_with_a_reset_until_removed(proxy: LoopbackProxy) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        timed(client)
        toxic = proxy.add_toxic("reset", rate=1.0)
        errors = []
        for _ in range(3):
            with pytest.raises(httpx.TransportError) as caught:
                recommend(client)
            errors.append(str(caught.value))
        assert proxy.remove_toxic(toxic)
        assert recommend(client).status_code == 200
    assert any("reset" in e.lower() for e in errors), errors
    assert proxy.counters()["reset"] == 3


def test_two_toxics_act_at_once(proxy: LoopbackProxy) -> None:
    slow = proxy.add_toxic("latency", latency_ms=150)
    drop = proxy.add_toxic("drop", rate=0.5)
    assert {t["id"] for t in proxy.toxics()} == {slow, drop}
    ok, failed = [], 0
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        for _ in range(16):
            start = time.perf_counter()
            try:
                recommend(client)
                ok.append(time.perf_counter() - start)
            except httpx.TransportError:
                failed += 1
    assert 0 < failed < 16 and ok, "seeded rate 0.5 over 16 requests: some fail, some pass"
    assert min(ok) >= 0.14
    assert proxy.remove_toxic(drop)
    assert [t["id"] for t in proxy.toxics()] == [slow]


def test_a_toxic_ends_by_itself_after_its_ttl(proxy: LoopbackProxy) -> None:
    toxic = proxy.add_toxic("drop", rate=1.0, ttl_s=0.3)
    time.sleep(0.5)
    assert proxy.toxics() == []
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        assert recommend(client).status_code == 200
    assert not proxy.remove_toxic(toxic)


def test_bad_toxics_and_urls_are_refused_by_name(server: ServerProcess) -> None:
    with pytest.raises(ConfigError, match="unknown toxic 'slow'"):
        LoopbackProxy(server.url).add_toxic("slow")
    with pytest.raises(ConfigError, match="rate must be within"):
        LoopbackProxy(server.url).add_toxic("drop", rate=1.5)
    with pytest.raises(ConfigError, match="no parameter"):
        LoopbackProxy(server.url).add_toxic("latency", rate=1.0)
    with pytest.raises(ConfigError, match="http"):
        LoopbackProxy("tcp://127.0.0.1:1")
    with pytest.raises(ProxyError, match="not started"):
        _ = LoopbackProxy(server.url).url


def open_sockets() -> int:
    """Sockets this process holds (the listing's own directory fd is gone by the time it is read)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_stop_leaves_no_thread_connection_or_listener(server: ServerProcess) -> None:
    gc.collect()
    before = open_sockets()
    proxy = LoopbackProxy(server.url).start()
    port = proxy.port
    client = httpx.Client(base_url=proxy.url, timeout=10)
    assert recommend(client).status_code == 200  # an idle keep-alive connection stays open...
    assert proxy.counters()["open"] == 1
    proxy.stop()  # ...and stop() closes it too
    proxy.stop()
    assert not any(t.name.startswith("recdrill-proxy") for t in threading.enumerate())
    assert proxy.counters()["open"] == 0
    with pytest.raises(httpx.TransportError):
        recommend(client)  # its connection was closed; a new one is refused
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    gc.collect()
    assert open_sockets() == before


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_dev_certificate(tmp_path_factory.mktemp("tls"))


def test_tls_passes_through_and_the_certificate_still_verifies(model_dir: Path, tls: TlsFiles) -> None:
    state = model_dir.parent / "tls-state"
    with (
        ServerProcess(
            model_dir, state, admin_key=KEY, tls_cert=tls.cert, tls_key=tls.key, ca_bundle=tls.ca_cert
        ) as https,
        LoopbackProxy(https.url) as proxy,
    ):
        assert proxy.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=proxy.url, timeout=10, verify=https.verify) as client:
            assert recommend(client).status_code == 200
            slow = proxy.add_toxic("latency", latency_ms=200)
            assert timed(client) >= 0.19
            proxy.remove_toxic(slow)
            proxy.add_toxic("reset", rate=1.0)
            with pytest.raises(httpx.TransportError):
                recommend(client)
