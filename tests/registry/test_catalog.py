"""The registry's SQLite catalogue: versions in push order, stage history, production log, transactions."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from recdrill.errors import VersionNotFoundError
from recdrill.registry.catalog import Catalog, VersionRow, utc_now
from recdrill.registry.manifest import ManifestRecord, StoredFile
from recdrill.registry.stages import Stage


def record(version: str, address: str | None = None, **fields: object) -> ManifestRecord:
    entry = StoredFile("model.json", "ab" * 32, 10, "cd" * 32)
    return ManifestRecord(
        version=version,
        address=address or f"addr-{version}",
        parent=None,
        dataset_fingerprint="fp",
        model_kind="itemknn",
        files=(entry,),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "nested" / "registry.db")


def push(catalog: Catalog, stage: Stage = Stage.CANDIDATE) -> str:
    with catalog.transaction() as session:
        version = session.next_version()
        session.insert(record(version), stage)
    return version


def test_a_new_catalogue_is_an_empty_wal_file(catalog: Catalog) -> None:
    assert catalog.path.is_file()
    with contextlib.closing(sqlite3.connect(catalog.path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with catalog.transaction(write=False) as session:
        assert session.all() == [] and session.next_version() == "v1"


def test_versions_are_numbered_in_push_order_and_found_by_id_and_address(catalog: Catalog) -> None:
    assert [push(catalog) for _ in range(3)] == ["v1", "v2", "v3"]
    with catalog.transaction(write=False) as session:
        assert [row.version for row in session.all()] == ["v1", "v2", "v3"]
        found = session.get("v2")
        assert found == VersionRow("v2", Stage.CANDIDATE, record("v2"))
        assert found.address == "addr-v2"
        by_address = session.by_address("addr-v3")
        assert by_address is not None and by_address.version == "v3"
        assert session.by_address("addr-nope") is None and session.find("v9") is None
        assert session.next_version() == "v4"


def test_get_of_an_unknown_version_names_it(catalog: Catalog) -> None:
    with (
        catalog.transaction(write=False) as session,
        pytest.raises(
            VersionNotFoundError, match="no registered version 'v7'; 'recdrill registry list' shows them"
        ),
    ):
        session.get("v7")


def test_the_manifest_round_trips_through_the_catalogue(catalog: Catalog) -> None:
    pushed = record("v1", metrics={"NDCG@10": 0.25}, hyperparameters={"neighbours": 20})
    with catalog.transaction() as session:
        session.insert(pushed, Stage.CANDIDATE)
    with catalog.transaction() as session:
        assert session.get("v1").record == pushed
        session.replace_manifest(record("v1", data_key_id="new-key"))
    with catalog.transaction(write=False) as session:
        assert session.get("v1").record.data_key_id == "new-key"


def test_stage_changes_are_recorded_with_their_reasons(catalog: Catalog) -> None:
    push(catalog)
    with catalog.transaction() as session:
        session.set_stage("v1", Stage.CANARY, "canary started")
        session.set_stage("v1", Stage.PRODUCTION, "judge passed")
    with catalog.transaction(write=False) as session:
        assert session.get("v1").stage is Stage.PRODUCTION
        assert session.in_stage(Stage.PRODUCTION) == ["v1"] and session.in_stage(Stage.CANARY) == []
        assert session.events("v1") == [
            (None, "candidate", "push"),
            ("candidate", "canary", "canary started"),
            ("canary", "production", "judge passed"),
        ]
        assert session.events("v2") == []


def test_the_production_log_is_the_stack_a_rollback_pops(catalog: Catalog) -> None:
    for _ in range(3):
        push(catalog)
    with catalog.transaction() as session:
        assert session.previous_production(None) is None
        session.set_stage("v1", Stage.PRODUCTION, "promote")
        session.set_stage("v1", Stage.ARCHIVED, "superseded")  # kept on the stack
        session.set_stage("v2", Stage.PRODUCTION, "promote")
        assert session.previous_production("v2") == "v1"
        session.set_stage("v2", Stage.ARCHIVED, "superseded")
        session.set_stage("v3", Stage.PRODUCTION, "promote")
        assert session.previous_production("v3") == "v2"
        session.set_stage("v3", Stage.ARCHIVED, "rollback")  # any other reason takes it off
        assert session.previous_production(None) == "v2"
        assert session.previous_production("v2") == "v1"


def test_a_transaction_that_raises_leaves_nothing_behind(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError, match="undo"), catalog.transaction() as session:
        session.insert(record("v1"), Stage.CANDIDATE)
        raise RuntimeError("undo")
    with catalog.transaction(write=False) as session:
        assert session.all() == [] and session.events("v1") == []


def test_a_read_transaction_sees_one_snapshot_while_another_process_writes(catalog: Catalog) -> None:
    push(catalog)
    other = Catalog(catalog.path)  # a second opener of the same file, as another process is
    with catalog.transaction(write=False) as session:
        assert [row.version for row in session.all()] == ["v1"]
        assert push(other) == "v2"  # the writer is not blocked by the reader
        assert [row.version for row in session.all()] == ["v1"]
    with catalog.transaction(write=False) as session:
        assert [row.version for row in session.all()] == ["v1", "v2"]


def test_concurrent_writers_get_distinct_version_ids(catalog: Catalog) -> None:
    start = threading.Barrier(8)

    def writer(_: int) -> str:
        start.wait()
        return push(Catalog(catalog.path))

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(writer, range(8)))
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 9)]


def test_utc_now_is_an_aware_iso_timestamp_in_utc() -> None:
    stamp = datetime.fromisoformat(utc_now())
    assert stamp.utcoffset() == timedelta(0)
    assert len(utc_now().split(".")[1]) == len("000000+00:00")  # microseconds kept
