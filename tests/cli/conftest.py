"""Every command-line test gets a registry home and a working folder of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill._home import HOME_ENV

SHOP = "shopsim:n_items=300,n_users=400,n_events=8000"  # a small synthetic shop: seconds to train

# Variables that would make a command reach past its test: keys, stores, admin and traffic keys.
KEY_VARIABLES = (
    "RECDRILL_KEY_STORE",
    "RECDRILL_SIGNING_KEY",
    "RECDRILL_DATA_KEY",
    "RECDRILL_NEW_DATA_KEY",
    "RECDRILL_WATERMARK_KEY",
    "RECDRILL_ADMIN_KEY",
    "RECDRILL_TRAFFIC_KEY",
)


@pytest.fixture(autouse=True)
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``RECDRILL_HOME`` at a new (absent) folder, no key variables, and ``tmp_path`` as the working
    folder, so that default paths (``runs/drill``, ``recdrill-state``) land there; the session's shared
    home must never gain a key store or keys from these tests."""
    home = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(home))
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return home
