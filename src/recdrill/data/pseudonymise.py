"""Keyed pseudonyms for user ids, e-mail addresses and phone numbers (HMAC-SHA256).

A pseudonym is ``u_`` (user id), ``e_`` (e-mail) or ``p_`` (phone) and the first 16 hex digits (64
bits) of HMAC-SHA256 under a secret key, so it is stable for one key (logs, metrics and reports can
still be joined on it) and, without the key, neither reversible nor guessable by hashing candidate
ids. 64 bits keep collisions negligible: about 3e-8 for a million distinct ids.

The key is ``RECDRILL_PSEUDONYM_KEY`` (at least 32 characters) or else the file
``RECDRILL_HOME/keys/pseudonym.key`` (32 random bytes in hex), created with mode 0600 on first use.

What :meth:`Pseudonymiser.scrub_text` replaces, and deliberately leaves alone:

* E-mail addresses: ``local@domain.tld`` with an ASCII local part of letters, digits and
  ``. _ % + -`` and a dotted domain ending in a 2-63 letter top-level domain. Not matched:
  ``user@localhost`` (no dot), quoted local parts, IP-literal domains (``a@[10.0.0.1]``),
  non-ASCII (internationalised) addresses, spelled-out forms (``jo at example dot com``).
* Phone numbers, separated by single spaces, dots or hyphens, with 8-15 digits in all:
  international ``+44 20 7946 0958``, ``+1 (555) 123-4567``, ``+447700900123``, ``0044 20 ...``;
  trunk-prefixed national ``020 7946 0958``, ``07700 900123``, ``030-12345678``;
  an area code in parentheses ``(555) 123-4567``; North American ``555-123-4567``, ``555.123.4567``.
  Not matched, on purpose: a bare run of digits without a leading ``+`` (``5551234567`` looks
  exactly like an order number or an item id), and anything glued to a letter, digit or ``-./,``
  before it (``SKU-555-123-4567``, ``I-000123``), so prices (``1,234.56``, ``12.99``), dates
  (``2024-01-31``, ``31/01/2024``), times, IP addresses, version numbers and grouped card numbers
  stay as they are.

Arrays of ids: HMAC has no vectorised form, so :meth:`Pseudonymiser.pseudonymise_ids` hashes each
distinct id once (``pandas.factorize``, a list comprehension over the uniques) and scatters the
result with numpy; single ids go through an LRU cache.

>>> p = Pseudonymiser(b"k" * 32)
>>> p.pseudonymise_id("U-000042")
'u_ac3fdb69da892a8a'
>>> p.pseudonymise_id("U-000042") == Pseudonymiser(b"other key " * 4).pseudonymise_id("U-000042")
False
>>> p.scrub_text("mail jo.doe@example.com or call +44 20 7946 0958 about order 5551234567 (12.99 EUR)")
'mail e_0a9d126ec6ed8db8 or call p_295649322197443f about order 5551234567 (12.99 EUR)'
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recdrill._home import PSEUDONYM_KEY_FILE, create_private_once, exposed_mode, key_path, recdrill_home
from recdrill.errors import ConfigError

ENV_PSEUDONYM_KEY = "RECDRILL_PSEUDONYM_KEY"
MIN_KEY_CHARS = 32
TOKEN_HEX = 16
CACHE_SIZE = 100_000

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![\w-])"
)
_PHONE = re.compile(
    r"""
    (?<![\w+.,/-])          # not glued to a word, number, price, date, version or path
    (?<!\d\ )               # nor the later groups of a longer grouped number (card numbers)
    (?:
        (?:\+|00)\d{1,3}                  # country code: +44, 0044
        [ .-]?(?:\(\d{1,4}\)|\d{1,4})     # area code, perhaps in parentheses: (0)20, (555), 20
        (?:[ .-]?\d{2,4}){1,4}            # subscriber number in groups
      | \(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}       # (555) 123-4567, (020) 7946 0958
      | 0\d{1,4}[ .-]\d{3,4}[ .-]?\d{3,4}           # 020 7946 0958, 07700 900123, 030-12345678
      | [2-9]\d{2}([ .-])\d{3}\1\d{4}               # 555-123-4567, 555.123.4567, 555 123 4567
    )
    (?![\w+]|[.,/-]\d)      # nor followed by more of a number
    """,
    re.VERBOSE,
)
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 8, 15  # E.164 allows at most 15 digits


class Pseudonymiser:
    """Keyed pseudonyms under one secret ``key`` (at least 32 bytes; see the module docstring)."""

    def __init__(self, key: bytes, cache_size: int = CACHE_SIZE) -> None:
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(f"a pseudonym key needs at least {MIN_KEY_CHARS} bytes, got {len(key)}")
        self._key = key
        self._user = functools.lru_cache(maxsize=cache_size)(self._user_token)

    def pseudonymise_id(self, user_id: object) -> str:
        """``u_`` and 16 hex digits; ``str(user_id)`` is what is hashed, so ``42`` and ``"42"`` agree."""
        return self._user(str(user_id))

    def pseudonymise_ids(self, user_ids: ArrayLike) -> NDArray[np.str_]:
        """:meth:`pseudonymise_id` of each id of an array (any shape), hashing each distinct id once."""
        ids = np.asarray(user_ids, dtype=object)
        # pandas' hash-based factorize: ~5x faster than np.unique's sort on a million strings.
        # Imported here: a serving worker pseudonymises one id at a time and should not start 0.4 s
        # slower (a replaced worker's start-up is downtime).
        import pandas as pd

        codes, uniques = pd.factorize(ids.ravel())
        tokens = np.array([self._user_token(str(u)) for u in uniques], dtype=f"<U{TOKEN_HEX + 2}")
        return tokens[codes].reshape(ids.shape)

    def scrub_text(self, text: str) -> str:
        """``text`` with e-mail addresses and phone numbers replaced by their pseudonyms."""
        text = _EMAIL.sub(lambda m: self._token("e", m.group().lower()), text)
        return _PHONE.sub(self._phone, text)

    def _phone(self, match: re.Match[str]) -> str:
        found = match.group()
        international = found.startswith(("+", "00"))
        # One number, one pseudonym: +44 (0)20 ... and 0044 20 ... both become +442079460958.
        digits = re.sub(r"\D", "", found.replace("(0)", "") if international else found)
        if not _MIN_PHONE_DIGITS <= len(digits) <= _MAX_PHONE_DIGITS:
            return found
        if international:
            digits = "+" + (digits[2:] if found.startswith("00") else digits)
        return self._token("p", digits)

    def _user_token(self, user_id: str) -> str:
        return self._token("u", user_id)

    def _token(self, kind: str, value: str) -> str:
        # The kind is hashed too, so a user id that equals a phone number gets another pseudonym.
        mac = hmac.digest(self._key, f"{kind}\0{value}".encode(), "sha256")
        return f"{kind}_{mac.hex()[:TOKEN_HEX]}"


def load_pseudonym_key(env: Mapping[str, str] | None = None) -> bytes:
    """The key from ``RECDRILL_PSEUDONYM_KEY``, else from (a new) ``RECDRILL_HOME/keys/pseudonym.key``.

    Raises:
        ConfigError: the variable is too short, or the key file is malformed or readable by others.
    """
    env = os.environ if env is None else env
    value = env.get(ENV_PSEUDONYM_KEY)
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise ConfigError(f"{ENV_PSEUDONYM_KEY} must have at least {MIN_KEY_CHARS} characters")
        return value.encode()
    return read_or_create_key_file(key_path(recdrill_home(env), PSEUDONYM_KEY_FILE))


def read_or_create_key_file(path: Path) -> bytes:
    """32 random bytes stored as hex in ``path`` (mode 0600), made on first use.

    Several processes may race to create it: each writes a private temporary file and hard-links it
    into place, which fails for all but the first, so no one ever reads a half-written key.
    """
    if not path.exists():
        create_private_once(path, (secrets.token_hex(32) + "\n").encode())
    if exposed_mode(path) is not None:
        raise ConfigError(f"{path}: the pseudonym key is readable by others; run chmod 600 {path}")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ConfigError(f"{path}: not a pseudonym key (expected hex)") from None
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: a pseudonym key needs at least {MIN_KEY_CHARS} bytes, got {len(key)}")
    return key


class ScrubbingFilter(logging.Filter):
    """Scrubs e-mail addresses and phone numbers from each log record's message before it is written.

    Attach it to handlers (``handler.addFilter(ScrubbingFilter())``): a filter on a logger does not
    see records that propagate from its children. The message is formatted with its arguments first,
    so ``log.info("from %s", email)`` is caught. Tracebacks (``exc_info``) are not scrubbed, and user
    ids are not recognisable in free text: log ``pseudonymise_id(user)``, never the raw id.
    """

    def __init__(self, pseudonymiser: Pseudonymiser | None = None) -> None:
        super().__init__()
        self._pseudonymiser = pseudonymiser

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = (self._pseudonymiser or default_pseudonymiser()).scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


@functools.lru_cache(maxsize=1)
def default_pseudonymiser() -> Pseudonymiser:
    """The process's pseudonymiser, keyed by :func:`load_pseudonym_key` at first use."""
    return Pseudonymiser(load_pseudonym_key())


def pseudonymise_id(user_id: object) -> str:
    """:meth:`Pseudonymiser.pseudonymise_id` under the process's key."""
    return default_pseudonymiser().pseudonymise_id(user_id)


def pseudonymise_ids(user_ids: ArrayLike) -> NDArray[np.str_]:
    """:meth:`Pseudonymiser.pseudonymise_ids` under the process's key."""
    return default_pseudonymiser().pseudonymise_ids(user_ids)


def scrub_text(text: str) -> str:
    """:meth:`Pseudonymiser.scrub_text` under the process's key."""
    return default_pseudonymiser().scrub_text(text)
