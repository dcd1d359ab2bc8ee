"""The audit log refuses edits and deletions, and summarises requests without their nested data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recdrill.security.audit import AuditLog, PendingAudit, summarise_body


def test_rows_can_be_appended_but_never_changed_or_deleted(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    log.append(PendingAudit(log, "operator", "POST", "/admin/faults", who="ops", key_role="operator"), 201)
    [record] = log.records()
    assert (record.who, record.needed_role, record.method, record.path, record.status) == (
        "ops",
        "operator",
        "POST",
        "/admin/faults",
        201,
    )
    log.close()
    with sqlite3.connect(tmp_path / "audit.db") as tamper:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            tamper.execute("UPDATE audit_log SET status = 200")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            tamper.execute("DELETE FROM audit_log")
    assert AuditLog(tmp_path / "audit.db").records()[0].status == 201


def test_summaries_keep_scalar_fields_only_and_stay_short() -> None:
    body = b'{"kind": "nan", "rate": 0.5, "detail": {"user": "x"}, "note": "' + b"a" * 500 + b'"}'
    summary = summarise_body(body)
    assert summary.startswith("kind=nan note=aaa") and summary.endswith("rate=0.5")
    assert "user" not in summary and len(summary) < 120
    assert summarise_body(b"[1, 2]") == "body: 6 bytes, not a JSON object"
