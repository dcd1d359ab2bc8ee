"""Keyed pseudonyms: stable under one key, different under another; e-mails and phones scrubbed,
prices, dates and ids left alone; the key file made once, privately."""

from __future__ import annotations

import logging
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.pseudonymise import (
    Pseudonymiser,
    ScrubbingFilter,
    load_pseudonym_key,
    read_or_create_key_file,
)
from recdrill.errors import ConfigError

KEY_A, KEY_B = b"a" * 32, b"b" * 32
TOKEN = re.compile(r"[upe]_[0-9a-f]{16}")


def test_user_pseudonyms_are_stable_per_key_and_differ_across_keys() -> None:
    a, again, b = Pseudonymiser(KEY_A), Pseudonymiser(KEY_A), Pseudonymiser(KEY_B)
    ids = [f"U-{i:06d}" for i in range(1000)]
    under_a = [a.pseudonymise_id(u) for u in ids]
    assert under_a == [again.pseudonymise_id(u) for u in ids]
    assert all(re.fullmatch(r"u_[0-9a-f]{16}", p) for p in under_a)
    assert len(set(under_a)) == len(ids)  # no collisions among distinct ids
    assert not set(under_a) & {b.pseudonymise_id(u) for u in ids}
    assert a.pseudonymise_id(42) == a.pseudonymise_id("42")


def test_arrays_are_pseudonymised_like_single_ids_keeping_their_shape() -> None:
    p = Pseudonymiser(KEY_A)
    rng = np.random.default_rng(0)
    ids = rng.choice(np.array([f"U-{i}" for i in range(50)], dtype=object), size=(40, 25))
    out = p.pseudonymise_ids(ids)
    assert out.shape == (40, 25)
    assert out.tolist() == [[p.pseudonymise_id(u) for u in row] for row in ids.tolist()]
    assert p.pseudonymise_ids(np.array([7, 8, 7])).tolist() == [p.pseudonymise_id(i) for i in (7, 8, 7)]


SCRUBBED = [
    "jo.doe@example.com",
    "Mailto:A.B+tag@mail.co.uk",
    "x_y%z@sub-domain.example.org",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "0044 20 7946 0958",
    "+447700900123",
    "+1 (555) 123-4567",
    "+1-555-123-4567",
    "+33 1 42 68 53 00",
    "+91 98765 43210",
    "020 7946 0958",
    "07700 900123",
    "030-12345678",
    "(555) 123-4567",
    "555-123-4567",
    "555.123.4567",
    "555 123 4567",
]
KEPT = [
    "12.99",
    "$1,234.56",
    "1 234 567,89 EUR",
    "+12.99 EUR",
    "1,000,000",
    "2024-01-31",
    "31/01/2024",
    "2024-01-31T12:30:45Z",
    "05/06/2023 14:00",
    "192.168.1.1",
    "version 1.2.3",
    "978-3-16-148410-0",
    "SKU-555-123-4567",
    "I-000123",
    "85123A",
    "U-000042",
    "order 5551234567",
    "4111 1111 1111 1111",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "user@localhost",
    "+5",
]


@pytest.mark.parametrize("text", SCRUBBED)
def test_emails_and_phone_numbers_become_tokens(text: str) -> None:
    p = Pseudonymiser(KEY_A)
    sentence = f"contact: {text}, thanks"
    scrubbed = p.scrub_text(sentence)
    found = TOKEN.findall(scrubbed)
    assert len(found) == 1 and scrubbed == sentence.replace(text.split(":")[-1], found[0])
    assert not re.search(r"\d{3}", scrubbed.replace(found[0], "")) and "@" not in scrubbed


@pytest.mark.parametrize("text", KEPT)
def test_prices_dates_ids_and_other_numbers_are_left_alone(text: str) -> None:
    sentence = f"item {text} in basket"
    assert Pseudonymiser(KEY_A).scrub_text(sentence) == sentence


def test_one_address_or_number_gets_one_token_whatever_its_spelling() -> None:
    p = Pseudonymiser(KEY_A)
    assert p.scrub_text("Jo.Doe@Example.COM") == p.scrub_text("jo.doe@example.com")
    london = {p.scrub_text(t) for t in ["+44 20 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958"]}
    assert len(london) == 1
    mixed = "a@b.io wrote to c@d.io from +44 20 7946 0958 about a@b.io"
    once = p.scrub_text(mixed)
    assert once.split()[0] == once.split()[-1] and p.scrub_text(once) == once  # idempotent
    assert Pseudonymiser(KEY_B).scrub_text(mixed) != once


def test_the_key_comes_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    assert load_pseudonym_key({"RECDRILL_PSEUDONYM_KEY": "k" * 40}) == b"k" * 40
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_pseudonym_key({"RECDRILL_PSEUDONYM_KEY": "short"})
    home = {"RECDRILL_HOME": str(tmp_path)}
    first = load_pseudonym_key(home)
    path = tmp_path / "keys" / "pseudonym.key"
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_pseudonym_key(home) == first  # made once, then reused
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]  # no temporary left


def test_processes_racing_to_make_the_key_all_get_the_same_one(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pseudonym.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: read_or_create_key_file(path), range(32)))
    assert len(set(keys)) == 1


def test_a_key_file_that_others_can_read_or_that_is_malformed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    read_or_create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        read_or_create_key_file(path)
    path.chmod(0o600)
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="expected hex"):
        read_or_create_key_file(path)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Pseudonymiser(b"short")


def test_a_handler_with_the_filter_never_writes_the_address_or_number() -> None:
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(ScrubbingFilter(Pseudonymiser(KEY_A)))
    logger = logging.getLogger("tests.pseudonymise")
    logger.addHandler(handler)
    try:
        logger.warning(
            "feedback from %s (%s) for item %s at %.2f", "jo@example.com", "+44 20 7946 0958", "85123A", 12.99
        )
    finally:
        logger.removeHandler(handler)
    [message] = records
    assert "jo@example.com" not in message and "7946" not in message
    assert message.endswith("for item 85123A at 12.99") and len(TOKEN.findall(message)) == 2
