"""DrillTarget against a scripted local deployment (FakeDeployment, shared by the drill tests)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from recdrill.contract import API_KEY_HEADER, WORKER_HEADER
from recdrill.drills.faults.proxy import LoopbackProxy
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.target import NEED_HELP, DrillTarget, LocalServer
from recdrill.errors import FaultUnavailableError, ProxyError

KEY = "target-admin-key"


class FakeDeployment:
    """A recdrill deployment in miniature on 127.0.0.1: fixed JSON for the endpoints drills use.

    ``/readyz`` answers ``{"model_version": version}``; with ``workers`` (a list of ``[pid, version]``)
    each probe is answered by the next worker in turn, tagged with the worker header. ``/admin/faults``
    is a real little fault table; ``/admin/models/reload`` serves the version the body names (a
    registry ``version``, ``model_dir``: ``pushed_version``, none: ``configured``), or answers
    ``reload_status[body kind]``; ``/v1/feedback`` stores event ids (except those in ``lose``, and
    hangs up once on ids in ``hang_up_once``) and ``/admin/feedback/lookup`` names the missing ones;
    ``/v1/recommend`` answers with ``answers[user]``, by ``popular`` while a ranker fault is held.
    ``status`` forces an answer for ``(method, path)``. Every request is kept in ``requests``."""

    def __init__(self, version: str | None = "v1", workers: list[list[str]] | None = None) -> None:
        self.lock = threading.Lock()
        self.version = version
        self.configured = version
        self.workers = workers
        self.pushed_version = "pushed-1"
        self.reload_status: dict[str, int] = {}
        self.status: dict[tuple[str, str], int] = {}
        self.faults: dict[str, dict[str, Any]] = {}
        self.faults_vanish_after: int | None = None  # listings of /admin/faults before the table empties
        self.fault_listings = 0
        self.next_fault = 0
        self.feedback: set[str] = set()
        self.lose: set[str] = set()
        self.hang_up_once: set[str] = set()
        self.answers: dict[str, str] = {}
        self.readyz_probes = 0
        self.on_readyz: Callable[[FakeDeployment], None] | None = None
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> FakeDeployment:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def seen(self, method: str, path: str) -> list[Any]:
        """The JSON bodies of the requests for ``method path``, in order (None: no body)."""
        with self.lock:
            return [body for m, p, body, _ in self.requests if (m, p) == (method, path)]

    def serve(self, version: str) -> None:
        """Every worker (or the one server) serves ``version`` now."""
        self.version = version
        for worker in self.workers or []:
            worker[1] = version

    # -- the endpoints ------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path
        with self.lock:
            self.requests.append((method, path, body, {k.lower(): v for k, v in handler.headers.items()}))
            forced = self.status.get((method, path))
            if forced is not None:
                answer: tuple[int, Any, dict[str, str]] | None = (forced, {"detail": "forced"}, {})
            else:
                answer = self._answer(method, path, body)
        if answer is None:  # hang up without an answer
            handler.close_connection = True
            return
        status, payload, headers = answer
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "text/plain" if isinstance(payload, str) else "application/json")
        handler.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]] | None:
        if (method, path) == ("GET", "/readyz"):
            self.readyz_probes += 1
            if self.on_readyz is not None:
                self.on_readyz(self)
            if self.workers:
                pid, version = self.workers[(self.readyz_probes - 1) % len(self.workers)]
                return 200, {"status": "ready", "model_version": version}, {WORKER_HEADER: pid}
            return 200, {"status": "ready", "model_version": self.version}, {}
        if (method, path) == ("GET", "/metrics"):
            return 200, "", {}
        if (method, path) == ("GET", "/admin/faults"):
            self.fault_listings += 1
            if self.faults_vanish_after is not None and self.fault_listings > self.faults_vanish_after:
                self.faults.clear()
            return 200, list(self.faults.values()), {}
        if (method, path) == ("POST", "/admin/faults"):
            self.next_fault += 1
            fault = {**body, "id": f"f{self.next_fault}"}
            self.faults[fault["id"]] = fault
            return 201, fault, {}
        if method == "DELETE" and path.startswith("/admin/faults/"):
            found = self.faults.pop(path.removeprefix("/admin/faults/"), None)
            return (200, found, {}) if found is not None else (404, {"detail": "no such fault"}, {})
        if (method, path) == ("POST", "/admin/models/reload"):
            kind = "version" if body and "version" in body else "model_dir" if body else "configured"
            status = self.reload_status.get(kind, 200)
            if status != 200:
                return status, {"detail": f"refused {kind}"}, {}
            new = body["version"] if kind == "version" else self.pushed_version
            if kind == "configured":
                new = self.configured
            self.serve(new)
            return 200, {"model_version": new}, {}
        if (method, path) == ("POST", "/v1/feedback"):
            event_id = body.get("event_id")
            if event_id in self.hang_up_once:
                self.hang_up_once.discard(event_id)
                return None
            if event_id not in self.lose:
                self.feedback.add(event_id)
            return 200, {"status": "committed", "id": len(self.feedback)}, {}
        if (method, path) == ("POST", "/admin/feedback/lookup"):
            return 200, {"missing": [i for i in body["event_ids"] if i not in self.feedback]}, {}
        if (method, path) == ("POST", "/v1/recommend"):
            user = body["user_id"]
            faulted = any(f.get("point") == "ranker" for f in self.faults.values())
            items = [] if faulted else [{"item_id": self.answers.get(user, "none"), "score": 1.0}]
            served_by = "popular" if faulted else "primary"
            return 200, {"items": items, "served_by": served_by, "model_version": self.version}, {}
        return 404, {"detail": "not found"}, {}


@pytest.fixture
def fake() -> Iterator[FakeDeployment]:
    with FakeDeployment() as running:
        yield running


class Pids:
    """A WorkerSource listing whatever pids the test puts in it."""

    def __init__(self, *pids: int) -> None:
        self.pids = list(pids)

    def worker_pids(self) -> list[int]:
        return sorted(self.pids)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def help_for(fault: str, need: str) -> str:
    return re.escape(f"fault {fault!r} needs {NEED_HELP[need]}")


# -- headers and urls -------------------------------------------------------------------------------


def test_the_base_url_loses_its_trailing_slash_and_traffic_goes_straight_to_it() -> None:
    target = DrillTarget("http://127.0.0.1:8000//", KEY)
    assert target.base_url == "http://127.0.0.1:8000"
    assert target.traffic_url == "http://127.0.0.1:8000"
    assert target.headers == {API_KEY_HEADER: KEY}


def test_traffic_goes_through_the_proxy_while_there_is_one(fake: FakeDeployment) -> None:
    with LoopbackProxy(fake.url) as proxy:
        target = DrillTarget(fake.url, KEY, proxy=proxy)
        assert target.traffic_url == proxy.url != fake.url
        assert target.need_proxy("network-latency") is proxy


def test_an_unstarted_proxy_has_no_traffic_url() -> None:
    target = DrillTarget("http://127.0.0.1:8000", KEY, proxy=LoopbackProxy("http://127.0.0.1:8000"))
    with pytest.raises(ProxyError, match="has not started"):
        _ = target.traffic_url


@pytest.mark.parametrize(
    ("traffic_key", "anonymous", "expected"),
    [
        (None, False, {API_KEY_HEADER: KEY}),  # neither: the admin key
        ("reader-key", False, {API_KEY_HEADER: "reader-key"}),
        (None, True, {}),
        ("reader-key", True, {}),  # anonymous wins over a traffic key
    ],
)
def test_traffic_headers_carry_the_traffic_key_the_admin_key_or_none(
    traffic_key: str | None, anonymous: bool, expected: dict[str, str]
) -> None:
    target = DrillTarget("http://x", KEY, traffic_key=traffic_key, anonymous_traffic=anonymous)
    assert target.traffic_headers == expected
    assert target.headers == {API_KEY_HEADER: KEY}


def test_the_admin_client_sends_the_admin_key_to_the_server(fake: FakeDeployment) -> None:
    target = DrillTarget(fake.url + "/", KEY, traffic_key="reader-key")
    with target.admin() as admin:
        assert admin.get("/admin/faults").json() == []
    assert fake.requests[-1][3][API_KEY_HEADER.lower()] == KEY


# -- what a fault needs -----------------------------------------------------------------------------


def test_require_names_the_first_missing_need(tmp_path: Path) -> None:
    target = DrillTarget("http://x", KEY, state_dir=tmp_path)
    target.require("feedback-store-locked", "state_dir")  # there: no error
    with pytest.raises(FaultUnavailableError, match=help_for("f", "workers")):
        target.require("f", "state_dir", "workers", "local")
    with pytest.raises(FaultUnavailableError, match=help_for("cpu-hog", "local")):
        target.require("cpu-hog", "local")
    target.require("nothing-needed")


def test_require_passes_when_the_target_has_everything(tmp_path: Path) -> None:
    plan = ReplayPlan(("u1",), ("i1",))
    with LoopbackProxy("http://127.0.0.1:9") as proxy:
        target = DrillTarget(
            "http://x",
            KEY,
            plan=plan,
            workers=Pids(1, 2),
            state_dir=tmp_path,
            model_dir=tmp_path,
            snapshot=object(),  # type: ignore[arg-type]  # require only checks that one is there
            local=True,
            proxy=proxy,
        )
        target.require("all", *NEED_HELP)


@pytest.mark.parametrize(
    ("accessor", "need"),
    [
        ("need_workers", "workers"),
        ("need_state_dir", "state_dir"),
        ("need_model_dir", "model_dir"),
        ("need_snapshot", "snapshot"),
        ("need_plan", "plan"),
        ("need_proxy", "proxy"),
        ("need_local", "local"),
    ],
)
def test_each_need_accessor_refuses_a_target_without_it(accessor: str, need: str) -> None:
    target = DrillTarget("http://x", KEY)
    with pytest.raises(FaultUnavailableError, match=help_for("some-fault", need)):
        getattr(target, accessor)("some-fault")


def test_the_need_accessors_hand_back_what_the_target_has(tmp_path: Path) -> None:
    plan = ReplayPlan(("u1",), ("i1",))
    workers = LocalServer(12345)
    target = DrillTarget(
        "http://x", KEY, plan=plan, workers=workers, state_dir=tmp_path / "s", model_dir=tmp_path / "m"
    )
    assert target.need_workers("f") is workers
    assert target.need_state_dir("f") == tmp_path / "s"
    assert target.need_model_dir("f") == tmp_path / "m"
    assert target.need_plan("f") is plan
    target.local = True
    assert target.need_local("f") is None


def test_a_local_server_lists_no_workers_for_a_pid_without_spawned_children() -> None:
    assert LocalServer(2**22 + 1).worker_pids() == []  # beyond any pid_max: no such process


# -- served versions --------------------------------------------------------------------------------


def test_model_version_reads_readyz_and_is_none_without_an_answer(fake: FakeDeployment) -> None:
    target = DrillTarget(fake.url, KEY)
    assert target.model_version() == "v1"
    fake.version = None
    assert target.model_version() is None
    fake.status[("GET", "/readyz")] = 503
    fake.version = "v1"
    assert target.model_version() is None
    assert DrillTarget(closed_port_url(), KEY).model_version() is None


def test_served_versions_stop_once_every_known_worker_answered(fake: FakeDeployment) -> None:
    fake.workers = [["101", "v1"], ["102", "v2"]]
    target = DrillTarget(fake.url, KEY, workers=Pids(101, 102))
    assert target.served_versions() == {"101": "v1", "102": "v2"}
    assert fake.readyz_probes == 2  # round robin: both seen after two probes
    assert all(h.get("connection") == "close" for m, p, _, h in fake.requests if p == "/readyz")


def test_served_versions_without_a_worker_header_are_keyed_by_a_question_mark(
    fake: FakeDeployment,
) -> None:
    target = DrillTarget(fake.url, KEY)
    assert target.served_versions(probes=3) == {"?": "v1"}
    assert fake.readyz_probes == 3  # no known workers: every probe is sent, no early stop
    assert DrillTarget(closed_port_url(), KEY).served_versions(probes=2) == {}


def test_wait_converged_polls_until_every_worker_serves_the_version(fake: FakeDeployment) -> None:
    fake.workers = [["101", "v2"], ["102", "v1"]]

    def follow_late(deployment: FakeDeployment) -> None:
        if deployment.readyz_probes == 5:  # the lagging worker follows the reload on the fifth probe
            deployment.workers[1][1] = "v2"  # type: ignore[index]

    fake.on_readyz = follow_late
    target = DrillTarget(fake.url, KEY, workers=Pids(101, 102))
    assert target.wait_converged("v2", timeout_s=20.0) == {"101": "v2", "102": "v2"}
    assert fake.readyz_probes >= 5


def test_wait_converged_waits_for_a_worker_that_answers_no_probe_yet(fake: FakeDeployment) -> None:
    fake.workers = [["101", "v2"]]  # worker 102 is still loading the new version: it answers nothing

    def answer_late(deployment: FakeDeployment) -> None:
        if deployment.readyz_probes == 30:  # past the first round of probes
            deployment.workers.append(["102", "v2"])  # type: ignore[union-attr]

    fake.on_readyz = answer_late
    target = DrillTarget(fake.url, KEY, workers=Pids(101, 102))
    assert target.wait_converged("v2", timeout_s=20.0) == {"101": "v2", "102": "v2"}
    assert fake.readyz_probes >= 30


def test_wait_converged_gives_up_with_the_last_answer_at_the_timeout(fake: FakeDeployment) -> None:
    fake.workers = [["101", "v2"], ["102", "v1"]]
    target = DrillTarget(fake.url, KEY, workers=Pids(101, 102))
    assert target.wait_converged("v2", timeout_s=0.0) == {"101": "v2", "102": "v1"}


# -- reloads ------------------------------------------------------------------------------------------


def test_restore_model_reloads_a_registry_version_by_name(fake: FakeDeployment) -> None:
    fake.workers = [["101", "v7"], ["102", "v7"]]
    target = DrillTarget(fake.url, KEY, workers=Pids(101, 102))
    assert target.restore_model("v3") == {"101": "v3", "102": "v3"}
    assert fake.seen("POST", "/admin/models/reload") == [{"version": "v3"}]


def test_restore_model_falls_back_to_the_configured_model_then_the_model_folder(
    fake: FakeDeployment, tmp_path: Path
) -> None:
    fake.configured = "abc123"
    fake.reload_status = {"version": 404}
    target = DrillTarget(fake.url, KEY, model_dir=tmp_path)
    fake.serve("other")
    assert target.restore_model("abc123") == {"?": "abc123"}
    assert fake.seen("POST", "/admin/models/reload") == [None]  # not a registry version: no body

    fake.serve("other")
    fake.reload_status = {"configured": 500}
    fake.pushed_version = "abc123"  # what the model folder holds
    assert target.restore_model("abc123") == {"?": "abc123"}
    assert fake.seen("POST", "/admin/models/reload")[1:] == [None, {"model_dir": str(tmp_path)}]


def test_restore_model_returns_nothing_when_every_reload_is_refused(fake: FakeDeployment) -> None:
    fake.reload_status = {"version": 409, "configured": 409}
    target = DrillTarget(fake.url, KEY)
    assert target.restore_model("v1") == {}
    assert fake.seen("POST", "/admin/models/reload") == [{"version": "v1"}, None]


def test_reload_posts_the_body_and_returns_the_answer(fake: FakeDeployment) -> None:
    target = DrillTarget(fake.url, KEY)
    response = target.reload({"model_dir": "/m"})
    assert response.status_code == 200 and response.json() == {"model_version": "pushed-1"}
    assert target.model_version() == "pushed-1"
