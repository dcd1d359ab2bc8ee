"""Manifest records: their JSON form, refusal of malformed manifests, digests and content addresses."""

from __future__ import annotations

import hashlib
import json

import pytest

from recdrill.registry.manifest import (
    MANIFEST_FORMAT,
    ManifestRecord,
    StoredFile,
    content_address,
    sha256_hex,
)

FILES = (
    StoredFile("model.json", "1" * 64, 120, "a" * 64),
    StoredFile("sub/state.npz", "2" * 64, 4096, "b" * 64),
)


def full_record() -> ManifestRecord:
    return ManifestRecord(
        version="v3",
        address="f" * 64,
        parent="v2",
        dataset_fingerprint="0123abcd",
        model_kind="itemknn",
        metrics={"NDCG@10": 0.25, "HR@10": 0.5},
        hyperparameters={"neighbours": 20, "window": None},
        created_at="2024-01-01T00:00:00.000000+00:00",
        data_key_id="7218d88fb5b0f03f",
        files=FILES,
    )


def test_a_record_round_trips_through_json() -> None:
    record = full_record()
    assert ManifestRecord.from_json(record.to_json()) == record
    assert ManifestRecord.from_json(record.to_json().encode()) == record


def test_the_json_is_sorted_indented_and_carries_the_format() -> None:
    text = full_record().to_json()
    body = json.loads(text)
    assert body["format"] == MANIFEST_FORMAT == 1
    assert list(body) == sorted(body)
    assert text.endswith("}\n") and text.startswith('{\n  "address"')
    assert body["files"][1] == {
        "path": "sub/state.npz",
        "sha256": "2" * 64,
        "size": 4096,
        "plain_sha256": "b" * 64,
    }


def test_equal_records_give_byte_identical_json() -> None:
    """What is signed is the file's bytes: the same record must always serialise the same way."""
    reordered = ManifestRecord(**{**full_record().__dict__, "metrics": {"HR@10": 0.5, "NDCG@10": 0.25}})
    assert reordered.to_json() == full_record().to_json()


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"version": "v1"}',  # no format
        json.dumps({**json.loads(full_record().to_json()), "format": 2}),
    ],
)
def test_from_json_refuses_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match="not a format-1 recdrill manifest"):
        ManifestRecord.from_json(text)


def test_from_json_refuses_unknown_or_missing_fields() -> None:
    body = json.loads(full_record().to_json())
    with pytest.raises(TypeError, match="unexpected keyword argument 'owner'"):
        ManifestRecord.from_json(json.dumps({**body, "owner": "me"}))
    del body["files"]
    with pytest.raises(KeyError, match="files"):
        ManifestRecord.from_json(json.dumps(body))
    with pytest.raises(ValueError):
        ManifestRecord.from_json("{not json")


def test_file_finds_an_entry_by_its_path() -> None:
    record = full_record()
    assert record.file("sub/state.npz") == FILES[1]
    assert record.file("state.npz") is None
    assert ManifestRecord("v1", "a", None, None, None).file("model.json") is None


def test_defaults_of_a_minimal_record() -> None:
    record = ManifestRecord("v1", "addr", None, None, None)
    assert (record.metrics, record.hyperparameters, record.files) == ({}, {}, ())
    assert (record.created_at, record.data_key_id) == ("", "")
    assert ManifestRecord.from_json(record.to_json()) == record


def test_sha256_hex_is_the_hex_digest() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"weights") == hashlib.sha256(b"weights").hexdigest()


def test_content_address_folds_sorted_paths_and_digests() -> None:
    digests = {"state.npz": "b" * 64, "model.json": "a" * 64}
    expected = hashlib.sha256(f"model.json\0{'a' * 64}\nstate.npz\0{'b' * 64}\n".encode()).hexdigest()
    assert content_address(digests) == expected
    assert content_address(dict(reversed(digests.items()))) == expected


def test_content_address_changes_with_any_path_or_digest() -> None:
    base = content_address({"model.json": "a" * 64})
    assert content_address({"model.json": "c" * 64}) != base
    assert content_address({"other.json": "a" * 64}) != base
    assert content_address({"model.json": "a" * 64, "extra": "a" * 64}) != base
    assert content_address({}) == sha256_hex(b"")
