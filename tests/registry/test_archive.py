"""``Registry.archive``: a canary's rollback is recorded once, with its reason, whoever asks first."""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill.errors import StageError
from recdrill.registry import Registry, Stage


def test_archive_records_the_reason_once_and_refuses_production(
    registry: Registry, saved_model: Path
) -> None:
    registry.push(saved_model)
    registry.promote("v1", Stage.CANARY, reason="canary started")
    assert registry.archive("v1", "canary rollback: ndcg@10 worse") is True
    assert registry.archive("v1", "canary rollback: again") is False  # a second worker's rollback
    assert registry.show("v1").stage is Stage.ARCHIVED
    assert registry.history("v1") == [
        (None, "candidate", "push"),
        ("candidate", "canary", "canary started"),
        ("canary", "archived", "canary rollback: ndcg@10 worse"),
    ]
    registry.promote("v1", Stage.PRODUCTION)
    with pytest.raises(StageError, match="in production"):
        registry.archive("v1", "no")
