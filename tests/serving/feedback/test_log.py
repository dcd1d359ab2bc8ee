"""The durable feedback log: group commit, acknowledgement only after commit, SIGKILL, export."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from recdrill.cli import main
from recdrill.data.columns import ColumnMapping
from recdrill.data.loading import load_dataset
from recdrill.errors import ConfigError, FeedbackLogError
from recdrill.serving.feedback.export import count_withheld, export_feedback
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import SCHEMA, FeedbackEvent
from recdrill.serving.runtime.local_process import ServerProcess

SHOP = "shopsim:n_items=500,n_users=400,n_events=8000"
KINDS = ("view", "click", "cart", "purchase")


def event(i: int, **extra: str) -> FeedbackEvent:
    return FeedbackEvent(f"U-{i % 7}", f"SKU-{i:06d}", KINDS[i % 4], 1_700_000_000.0 + i, **extra)


def stored(db: Path) -> dict[int, str]:
    """Row id -> item id, read through a connection of its own."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return dict(connection.execute("SELECT id, item_id FROM feedback"))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[FeedbackLog]:
    opened = FeedbackLog(tmp_path / "feedback.db")
    yield opened
    opened.close()


# --- the log in this process ------------------------------------------------------------------


def test_concurrent_appends_share_commits(log: FeedbackLog) -> None:
    start = threading.Barrier(16)

    def client(c: int) -> list[int]:
        start.wait()
        return [log.append(event(c * 100 + i)) for i in range(8)]

    with ThreadPoolExecutor(16) as pool:
        ids = [row for rows in pool.map(client, range(16)) for row in rows]
    assert len(set(ids)) == 128 and log.count() == 128
    assert log.commits <= 64, log.commits  # one commit per event would be 128


def test_an_acknowledged_event_is_visible_to_another_connection(log: FeedbackLog) -> None:
    for i in range(5):
        row = log.append(event(i))
        assert stored(log.path)[row] == f"SKU-{i:06d}"


def test_submit_waits_on_the_event_loop_not_on_threads(log: FeedbackLog) -> None:
    threads_before = threading.active_count()

    async def burst() -> tuple[list[int], int]:
        pending = asyncio.gather(*(log.submit(event(i)) for i in range(400)))
        most = threads_before
        while not pending.done():
            most = max(most, threading.active_count())
            await asyncio.sleep(0)
        return await pending, most

    ids, most_threads = asyncio.run(burst())
    assert sorted(ids) == sorted(stored(log.path)) and len(set(ids)) == 400
    assert most_threads == threads_before  # the writer thread already existed; nothing was added
    assert log.commits < 400


def test_a_retried_event_id_is_stored_once(log: FeedbackLog) -> None:
    first = log.append(event(1, event_id="click-1"))
    with ThreadPoolExecutor(8) as pool:  # duplicates inside one batch too
        again = list(pool.map(lambda _: log.append(event(1, event_id="click-1")), range(16)))
    other = log.append(event(2, event_id="click-2"))
    assert again == [first] * 16 and other != first
    assert log.count() == 2


def test_a_failed_commit_is_not_acknowledged(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.db", busy_timeout_s=0.2)
    with contextlib.closing(sqlite3.connect(log.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock too long
        with pytest.raises(FeedbackLogError, match="could not commit 1 event"):
            log.append(event(1))
        other.execute("ROLLBACK")
    assert log.append(event(2)) > 0  # the log works again once the lock is free
    assert list(stored(log.path).values()) == ["SKU-000002"]
    log.close()


def test_close_commits_what_is_queued_then_refuses(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.db")
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(log.append, event(i)) for i in range(50)]
        ids = [f.result() for f in futures]
    log.close()
    assert sorted(ids) == sorted(stored(log.path))
    with pytest.raises(FeedbackLogError, match="closed"):
        log.append(event(99))


# --- SIGKILL ----------------------------------------------------------------------------------

WRITER = """
import sys, threading
from recdrill.serving.feedback.log import FeedbackLog
from recdrill.serving.feedback.schema import FeedbackEvent
log = FeedbackLog(sys.argv[1])
lock = threading.Lock()
def client(c):
    for i in range(10**6):
        item = f"{sys.argv[2]}-{c}-{i}"
        row = log.append(FeedbackEvent("u", item, "view", 1.0))
        with lock:  # an acknowledgement leaves only after append returned
            print(row, item, flush=True)
for c in range(8):
    threading.Thread(target=client, args=(c,), daemon=True).start()
threading.Event().wait()
"""


def test_acknowledged_events_survive_sigkill_of_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    acknowledged: dict[int, str] = {}
    for round_ in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), f"r{round_}"], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        for _ in range(150 + 50 * round_):  # kill at a different point each round
            row, item = writer.stdout.readline().split()
            acknowledged[int(row)] = item
        writer.send_signal(signal.SIGKILL)  # eight clients mid-append: no shutdown code runs
        writer.wait()
        writer.stdout.close()
    rows = stored(db)
    assert {row: rows.get(row) for row in acknowledged} == acknowledged
    assert len(acknowledged) == 600 and len(rows) >= 600  # unacknowledged commits may exist too


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "itemknn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


def test_acknowledged_posts_survive_sigkill_of_a_two_worker_server(model_dir: Path, tmp_path: Path) -> None:
    acknowledged: dict[int, str] = {}
    lock = threading.Lock()
    for round_ in range(2):
        server = ServerProcess(model_dir, tmp_path / "state", workers=2).start()
        stop = threading.Event()

        def client(c: int, url: str = server.url, round_: int = round_, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=url, timeout=10.0) as http:
                for i in range(10**6):
                    if stop.is_set():
                        return
                    item = f"r{round_}-{c}-{i}"
                    body = {"user_id": "U-000001", "item_id": item, "event": "click"}
                    try:
                        response = http.post("/v1/feedback", json=body)
                    except httpx.TransportError:
                        return  # the server died under this request: not acknowledged
                    assert response.status_code == 200, response.text
                    with lock:
                        acknowledged[response.json()["id"]] = item

        threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60 * (round_ + 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # SIGKILL to the supervisor and both workers while posts are in flight
        stop.set()
        for thread in threads:
            thread.join()
    rows = stored(tmp_path / "state" / "feedback.db")
    assert len(acknowledged) >= 120
    assert {row: rows.get(row) for row in acknowledged} == acknowledged


# --- export -----------------------------------------------------------------------------------


def test_export_writes_every_event_as_parquet_and_csv(log: FeedbackLog, tmp_path: Path) -> None:
    ids = [log.append(event(i, **({"event_id": f"e{i}"} if i % 2 else {}))) for i in range(30)]
    for name in ("out.parquet", "out.csv"):
        assert main(["feedback", "export", "--state-dir", str(tmp_path), "--out", str(tmp_path / name)]) == 0
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    with (tmp_path / "out.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in table] == ids and [int(r["id"]) for r in rows] == ids
    assert table[3]["item_id"] == rows[3]["item_id"] == "SKU-000003"
    assert table[3]["timestamp"] == float(rows[3]["timestamp"]) == 1_700_000_003.0
    assert table[3]["event_id"] == "e3" and table[4]["event_id"] is None and rows[4]["event_id"] == ""
    assert table[3]["event"] == "purchase"
    # Retraining reads the export directly.
    shop = load_dataset(str(tmp_path / "out.parquet"), columns=ColumnMapping(event="event"))
    assert len(shop.interactions) == 30 and shop.n_users == 7


def test_export_since_keeps_later_events(log: FeedbackLog, tmp_path: Path) -> None:
    for i in range(10):
        log.append(event(i))
    out = tmp_path / "late.csv"
    since = "2023-11-14T22:13:25+00:00"  # 1_700_000_005
    assert (
        main(["feedback", "export", "--state-dir", str(tmp_path), "--out", str(out), "--since", since]) == 0
    )
    with out.open() as handle:
        assert [r["item_id"] for r in csv.DictReader(handle)] == [f"SKU-{i:06d}" for i in range(5, 10)]


@pytest.mark.parametrize(
    ("setup", "out", "code", "message"),
    [
        ("missing", "x.parquet", 3, "feedback.db: no such file"),
        ("garbage", "x.parquet", 4, "not a recdrill feedback log"),
        ("no-table", "x.csv", 4, "has no feedback table"),
        ("ok", "x.json", 2, "use .parquet or .csv"),
        ("ok", "x.csv --since yesterday", 2, "--since must be epoch seconds"),
    ],
)
def test_export_errors_are_one_line(
    setup: str, out: str, code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "feedback.db"
    if setup == "garbage":
        db.write_bytes(os.urandom(4096))
    elif setup == "no-table":
        with contextlib.closing(sqlite3.connect(db)) as connection:
            connection.execute("CREATE TABLE other (x)")
    elif setup == "ok":
        FeedbackLog(db).close()
    name, *rest = out.split(" ", 1)
    extra = rest[0].split(" ") if rest else []
    assert (
        main(["feedback", "export", "--state-dir", str(tmp_path), "--out", str(tmp_path / name), *extra])
        == code
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / name).exists()


# --- quarantine -------------------------------------------------------------------------------


def quarantined(db: Path) -> dict[int, str]:
    """Row id -> reason of every quarantined event."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return dict(connection.execute("SELECT feedback_id, reason FROM quarantine"))


def test_read_after_hands_out_committed_rows_in_order(log: FeedbackLog) -> None:
    assert log.last_id() == 0 and log.read_after(0) == []
    ids = [log.append(event(i)) for i in range(6)]
    rows = log.read_after(ids[1], limit=3)
    assert [r[0] for r in rows] == ids[2:5] and log.last_id() == ids[-1]
    _, user, item, kind, ts, received_at = rows[0]
    assert abs(received_at - time.time()) < 3600  # the server's clock, not the event's
    assert user.startswith("u_") and user != "U-2"  # as stored: the pseudonym
    assert (item, kind, ts) == ("SKU-000002", "cart", 1_700_000_002.0)


def test_quarantine_where_matches_user_item_event_and_span(log: FeedbackLog) -> None:
    ids = [log.append(event(i)) for i in range(28)]  # user U-(i % 7), kind i % 4, ts 1_700_000_000 + i
    assert log.quarantine.where(user_id="U-3", since=1_700_000_010.0, reason="user_burst") == 3
    assert quarantined(log.path) == dict.fromkeys([ids[10], ids[17], ids[24]], "user_burst")
    assert log.quarantine.where(user_id="U-3", reason="manual") == 1  # only i=3 is new
    assert quarantined(log.path)[ids[10]] == "user_burst"  # the first reason stays
    assert log.quarantine.where(item_id="SKU-000005", event="cart", reason="spike") == 0  # it is a click
    assert log.quarantine.where(item_id="SKU-000005", event="click", reason="spike") == 1
    stored_user = log.read_after(ids[0], limit=1)[0][1]  # U-1's pseudonym, as a monitor reads it
    assert log.quarantine.where(user_pseudonym=stored_user, until=1_700_000_008.0, reason="burst") == 2
    assert log.quarantine.rows([ids[0], ids[0], 10**6], "manual") == 1  # repeats and unknown ids skipped
    assert log.quarantine.where(user_id="U-6", from_id=ids[14], reason="recent") == 2  # i = 20, 27
    assert len(quarantined(log.path)) == 10 and log.count() == 28  # nothing is deleted


def test_a_quarantine_needs_a_reason_and_a_target(log: FeedbackLog) -> None:
    row = log.append(event(1))
    with pytest.raises(ConfigError, match="needs a reason"):
        log.quarantine.rows([row], " ")
    with pytest.raises(ConfigError, match="names a user_id or an item_id"):
        log.quarantine.where(reason="everything", since=0.0)
    with pytest.raises(ConfigError, match="not both"):
        log.quarantine.where(reason="x", user_id="U-1", user_pseudonym="u_0000000000000000")
    assert quarantined(log.path) == {}


def test_quarantined_events_are_left_out_of_the_export(
    log: FeedbackLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [log.append(event(i)) for i in range(20)]
    assert log.quarantine.where(user_id="U-2", reason="user_burst") == 3  # i = 2, 9, 16
    kept = [row for i, row in enumerate(ids) if i % 7 != 2]
    base = ["feedback", "export", "--state-dir", str(tmp_path), "--out"]
    assert main([*base, str(tmp_path / "clean.csv")]) == 0
    assert "exported 17 event(s)" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "all.csv"), "--include-quarantined"]) == 0
    assert "exported 20 event(s)" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "late.csv"), "--since", "1700000010"]) == 0
    assert "withheld 1 quarantined event(s)" in capsys.readouterr().err  # i = 16
    with (tmp_path / "clean.csv").open() as clean, (tmp_path / "all.csv").open() as every:
        assert [int(r["id"]) for r in csv.DictReader(clean)] == kept
        assert [int(r["id"]) for r in csv.DictReader(every)] == ids
    assert export_feedback(log.path, tmp_path / "all.parquet", include_quarantined=True) == 20
    assert pq.read_table(tmp_path / "all.parquet").num_rows == 20
    assert export_feedback(log.path, tmp_path / "clean.parquet") == 17


def test_a_log_from_before_quarantine_exports_and_gains_it_on_open(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    with contextlib.closing(sqlite3.connect(db)) as connection:  # the schema before quarantine existed
        connection.execute(SCHEMA)
        rows = [(f"u_{i:016x}", f"SKU-{i}", "click", 1.0 + i, 2.0 + i) for i in range(5)]
        connection.executemany(
            "INSERT INTO feedback (user_id, item_id, event, ts, received_at) VALUES (?, ?, ?, ?, ?)", rows
        )
        connection.commit()
    assert export_feedback(db, tmp_path / "old.csv") == 5 and count_withheld(db) == 0
    with contextlib.closing(sqlite3.connect(db)) as connection:  # exporting changed nothing
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        assert "quarantine" not in tables
    log = FeedbackLog(db)
    try:
        assert log.quarantine.where(item_id="SKU-3", reason="spike") == 1
        assert log.append(event(9)) == 6  # old rows kept their ids; new ones follow
    finally:
        log.close()
    assert stored(db)[4] == "SKU-3" and quarantined(db) == {4: "spike"}
    assert export_feedback(db, tmp_path / "new.csv") == 5 and count_withheld(db) == 1


@pytest.mark.parametrize("ts", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_event_time_is_refused_and_the_writer_goes_on(log: FeedbackLog, ts: float) -> None:
    # NaN once reached SQLite as NULL, INSERT OR IGNORE skipped the row, and the writer thread died
    # on the missing row: every later append waited forever.
    with pytest.raises(FeedbackLogError, match="event time must be finite"):
        log.append(FeedbackEvent("U-1", "SKU-1", "click", ts))
    assert log.append(FeedbackEvent("U-1", "SKU-1", "click", 1.0)) == 1
