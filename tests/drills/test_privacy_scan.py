"""After a drill and feedback full of personal data, no raw user id, e-mail or phone number is left
in the server's log, its metrics, the feedback and audit databases, or the drill report.

A real server on loopback, a real (short) drill through the replayer, real SQLite files read as
bytes. The needles are checked to be in what was sent, and the pseudonyms and scrubbed tokens to
be where the data went, so the scan cannot pass by looking at nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recdrill.cli import main
from recdrill.data.loading import load_dataset
from recdrill.data.pseudonymise import ENV_PSEUDONYM_KEY, Pseudonymiser
from recdrill.data.splits import leave_one_out
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.report import write_report
from recdrill.drills.runner import DrillRunner
from recdrill.drills.scenario import parse_scenario
from recdrill.drills.target import DrillTarget
from recdrill.serving.runtime.local_process import ServerProcess

DATA = "shopsim:n_items=300,n_users=250,n_events=5000"
KEY = "privacy-admin-key"
ADMIN = {"X-API-Key": KEY}
PSEUDONYM_KEY = "privacy-test-pseudonym-key-0123456789abcdef"
EMAILS = ("Jo.Doe@Example.com", "anna.smith@example.org")
PHONES = ("+44 20 7946 0958", "555-123-4567", "(020) 7946 0958")
SCENARIO = """
name: privacy-short
traffic: {rate: 25, duration_s: 4, seed: 3, warmup_requests: 5}
baseline_s: 1
after_s: 1
window_s: 1
faults:
  - {name: slow-ranker, at_s: 1.5, duration_s: 1.5, kind: latency, latency_ms: 100}
hypotheses:
  - {name: available, metric: availability, min: 0.5}
"""


@pytest.fixture(scope="module")
def pseudonyms() -> Iterator[Pseudonymiser]:
    """The key the server inherits, and a pseudonymiser under it to know what it should write."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_PSEUDONYM_KEY, PSEUDONYM_KEY)
        yield Pseudonymiser(PSEUDONYM_KEY.encode())


@pytest.fixture(scope="module")
def server(pseudonyms: Pseudonymiser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    out = tmp_path_factory.mktemp("privacy") / "model"
    assert main(["train", "--data", DATA, "--model", "itemknn", "--out", str(out)]) == 0
    with ServerProcess(out, out.parent / "state", admin_key=KEY, deadline_ms=200) as running:
        yield running


def personal_requests(plan: ReplayPlan) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Requests a careless or hostile client sends: personal data in every field it can reach."""
    users = [*plan.user_ids[:5], *EMAILS, *PHONES, "customer-4711"]
    requests: list[tuple[str, str, dict[str, Any] | None]] = []
    for i, user in enumerate(users):
        item = f"sku-{i} gift for {EMAILS[i % 2]}" if i % 3 == 0 else f"sku-{i} call {PHONES[i % 3]}"
        event_id = f"retry-{i} from {EMAILS[1]} {PHONES[0]}" if i % 2 else None
        body = {"user_id": user, "item_id": item, "event": "click", "event_id": event_id}
        requests.append(("POST", "/v1/feedback", {k: v for k, v in body.items() if v is not None}))
        requests.append(("POST", "/v1/recommend", {"user_id": user, "k": 5}))
    requests += [
        ("POST", "/v1/recommend", {"user_id": EMAILS[0], "category": EMAILS[1]}),  # 422 echoing it
        ("POST", "/v1/recommend", {"user_id": PHONES[0], EMAILS[0]: 1}),  # unknown field named so
        ("POST", "/v1/feedback", {"user_id": EMAILS[0], "item_id": "x", "event": PHONES[1]}),
        ("GET", f"/v1/users/{EMAILS[0]}", None),  # no such route
        ("DELETE", f"/admin/faults/{EMAILS[1]}", None),  # 404 echoing it; audited
        ("POST", "/admin/models/reload", {"model_dir": f"/nowhere/{EMAILS[0]}/call {PHONES[0]}/model"}),
    ]
    return requests


def test_no_personal_data_is_left_after_a_drill(
    server: ServerProcess, pseudonyms: Pseudonymiser, tmp_path: Path
) -> None:
    plan = ReplayPlan.from_fold(leave_one_out(load_dataset(DATA)).test)
    requests = personal_requests(plan)
    with httpx.Client(base_url=server.url, timeout=30.0, headers=ADMIN) as client:
        statuses = [client.request(method, path, json=body).status_code for method, path, body in requests]
        assert statuses.count(200) >= 20 and {404, 422} <= set(statuses), statuses
        journal = DrillRunner(parse_scenario(SCENARIO), DrillTarget(server.url, KEY, plan=plan)).run()
        metrics_text = client.get("/metrics").text
    report_json, report_html = write_report(journal, tmp_path / "report")
    assert journal["summary"]["availability"] > 0.5  # the drill really sent its traffic

    needles = {*plan.user_ids, *EMAILS, *(e.lower() for e in EMAILS), *PHONES, "customer-4711"}
    needles |= {p.replace(" ", "") for p in PHONES}  # +442079460958
    sent = json.dumps(requests)
    assert all(n in sent for n in {*EMAILS, *PHONES, "customer-4711", *plan.user_ids[:5]})
    assert len(plan.user_ids) >= 100 and all(u.startswith("U-") for u in plan.user_ids)

    state = server.state_dir
    scanned: dict[str, bytes] = {"/metrics": metrics_text.encode()}
    for path in [
        server.log_path,
        report_json,
        report_html,
        *state.glob("feedback.db*"),
        *state.glob("audit.db*"),
    ]:
        scanned[str(path)] = path.read_bytes()
    # A needle counts where it starts a token: user "U-000131" is not leaked by item "SKU-000131".
    patterns = {n: re.compile(rb"(?<![A-Za-z0-9])" + re.escape(n.encode())) for n in needles}
    leaks = {name: sorted(n for n, p in patterns.items() if p.search(data)) for name, data in scanned.items()}
    assert all(not found for found in leaks.values()), {k: v[:5] for k, v in leaks.items() if v}

    # ... and the data went somewhere: pseudonyms in the feedback log, scrubbed tokens in the log.
    with contextlib.closing(sqlite3.connect(state / "feedback.db")) as db:
        stored = {row[0] for row in db.execute("SELECT user_id FROM feedback")}
        items = [row[0] for row in db.execute("SELECT item_id FROM feedback")]
    raw_users = [body["user_id"] for _, path, body in requests if path == "/v1/feedback" and body]
    ours = {pseudonyms.pseudonymise_id(u) for u in raw_users[:-1]}
    audited = stored - ours  # the drill's own audited feedback, posted for plan users
    assert ours <= stored and audited and audited <= {pseudonyms.pseudonymise_id(u) for u in plan.user_ids}
    assert any(pseudonyms.scrub_text(EMAILS[0]) in item for item in items)
    log = server.log_path.read_text()
    assert "model refused (invalid model)" in log and pseudonyms.scrub_text(EMAILS[0]) in log
    with contextlib.closing(sqlite3.connect(state / "audit.db")) as db:
        audited = [row[0] for row in db.execute("SELECT path FROM audit_log")]
    assert "/admin/models/reload" in audited and any(p.startswith("/admin/faults/e_") for p in audited)
    assert 'recdrill_requests_total{route="unmatched",status="404"}' in metrics_text
