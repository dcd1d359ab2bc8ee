"""recdrill._home: the home folder, and private files (0600 in 0700) written atomically or once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from recdrill._home import (
    DEFAULT_HOME,
    HOME_ENV,
    KEYS_FOLDER,
    create_private_once,
    exposed_mode,
    key_path,
    recdrill_home,
    touch_private,
    write_new_private,
    write_private,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# -- the home folder ----------------------------------------------------------------------------------


def test_the_home_is_recdrill_home_when_set(tmp_path: Path) -> None:
    assert recdrill_home({HOME_ENV: str(tmp_path / "h")}) == tmp_path / "h"
    assert recdrill_home({HOME_ENV: "~/elsewhere", "HOME": str(tmp_path)}) == Path("~/elsewhere").expanduser()


def test_another_processs_environment_counts_its_own_home(tmp_path: Path) -> None:
    assert recdrill_home({"HOME": str(tmp_path)}) == tmp_path / DEFAULT_HOME
    assert recdrill_home({HOME_ENV: "", "HOME": str(tmp_path)}) == tmp_path / DEFAULT_HOME  # empty: unset
    assert recdrill_home({}) == Path.home() / DEFAULT_HOME


def test_this_processs_home_follows_its_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    assert recdrill_home() == tmp_path
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert recdrill_home() == tmp_path / "user" / DEFAULT_HOME


def test_key_files_live_in_the_keys_folder(tmp_path: Path) -> None:
    assert key_path(tmp_path, "data.key") == tmp_path / KEYS_FOLDER / "data.key"


# -- exposure -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "exposed"), [(0o600, None), (0o400, None), (0o640, 0o640), (0o604, 0o604)])
def test_exposed_mode_names_bits_that_let_others_in(tmp_path: Path, bits: int, exposed: int | None) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(bits)
    assert exposed_mode(path) == exposed


def test_exposed_mode_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        exposed_mode(tmp_path / "absent")


# -- writing ------------------------------------------------------------------------------------------


def test_write_private_replaces_a_readable_file_with_a_private_one(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    path = folder / "data.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new secret")
    assert path.read_bytes() == b"new secret"
    assert mode(path) == 0o600 and exposed_mode(path) is None
    assert mode(folder) == 0o700  # an existing folder is made private too
    assert sorted(p.name for p in folder.iterdir()) == ["data.key"]  # no temporary left behind


def test_write_private_can_leave_the_folder_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    write_private(folder / "f", b"x", durable=False, private_folder=False)
    assert mode(folder) == 0o755 and mode(folder / "f") == 0o600
    write_private(tmp_path / "new" / "deep" / "f", b"y")
    assert mode(tmp_path / "new" / "deep") == 0o700 and (tmp_path / "new" / "deep" / "f").read_bytes() == b"y"


def test_create_private_once_creates_only_the_first_time(tmp_path: Path) -> None:
    path = tmp_path / "k" / "pseudonym.key"
    assert create_private_once(path, b"first") is True
    assert create_private_once(path, b"second") is False
    assert path.read_bytes() == b"first"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]


def test_create_private_once_lets_exactly_one_racer_win(tmp_path: Path) -> None:
    path = tmp_path / "race.key"
    results: dict[int, bool] = {}
    start = threading.Barrier(8)

    def racer(n: int) -> None:
        start.wait()
        results[n] = create_private_once(path, f"racer {n}".encode())

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, won in results.items() if won]
    assert len(results) == 8 and len(winners) == 1
    assert path.read_bytes() == f"racer {winners[0]}".encode()  # whole: never a half-written file
    assert [p.name for p in tmp_path.iterdir()] == ["race.key"]


def test_touch_private_creates_an_empty_file_and_keeps_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "db" / "keys.db"
    touch_private(path)
    assert path.read_bytes() == b"" and mode(path) == 0o600 and mode(path.parent) == 0o700
    path.write_bytes(b"content")
    touch_private(path)
    assert path.read_bytes() == b"content"


def test_write_new_private_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.pem"
    write_new_private(path, b"pem")
    assert path.read_bytes() == b"pem" and mode(path) == 0o600 and mode(path.parent) == 0o700
    with pytest.raises(FileExistsError):
        write_new_private(path, b"other")
    assert path.read_bytes() == b"pem"


def test_private_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: modes must still come out private
    try:
        write_private(tmp_path / "a" / "f", b"1")
        create_private_once(tmp_path / "b" / "f", b"1")
        touch_private(tmp_path / "c" / "f")
        write_new_private(tmp_path / "d" / "f", b"1")
    finally:
        os.umask(old)
    for name in "abcd":
        assert mode(tmp_path / name / "f") == 0o600, name
        assert mode(tmp_path / name) == 0o700, name
