"""``recdrill.chaos.target``: a DrillTarget from a Chaos Toolkit experiment's plain arguments."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from recdrill.chaos.target import ADMIN_KEY_ENV, DEFAULT_BASE_URL, admin_key_from_env, drill_target
from recdrill.data.shopsim import ShopSim
from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.target import LocalServer
from recdrill.errors import ConfigError, DataFormatError
from recdrill.security.tls import make_dev_certificate

KEY_VARIABLE = "RECDRILL_CHAOS_TEST_KEY"


@pytest.fixture(autouse=True)
def no_admin_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ADMIN_KEY_ENV, KEY_VARIABLE):
        monkeypatch.delenv(name, raising=False)


def test_admin_key_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "s3cret")
    assert admin_key_from_env(KEY_VARIABLE) == "s3cret"
    assert admin_key_from_env(KEY_VARIABLE, required=False) == "s3cret"


def test_an_unset_key_is_an_error_naming_the_variable_unless_optional(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(
        ConfigError, match=f"the environment variable {KEY_VARIABLE} holds no admin key"
    ) as caught:
        admin_key_from_env(KEY_VARIABLE)
    assert "the key is never an argument" in str(caught.value)
    monkeypatch.setenv(KEY_VARIABLE, "")
    with pytest.raises(ConfigError, match=KEY_VARIABLE):
        admin_key_from_env(KEY_VARIABLE)  # set but empty holds no key either
    assert admin_key_from_env(KEY_VARIABLE, required=False) == ""


@pytest.mark.parametrize("name", ["", None, 42])
def test_admin_key_env_must_name_a_variable(name: object) -> None:
    with pytest.raises(ConfigError, match="admin_key_env must name an environment variable"):
        admin_key_from_env(name)  # type: ignore[arg-type]


def test_defaults_give_a_plain_target_on_the_default_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "admin-key")
    target = drill_target()
    assert (target.base_url, target.admin_key) == (DEFAULT_BASE_URL, "admin-key")
    assert target.workers is None and target.snapshot is None and target.plan is None
    assert (target.state_dir, target.model_dir, target.scratch_dir, target.local) == (None, None, None, False)
    assert isinstance(target.verify, ssl.SSLContext)


def test_plain_arguments_become_paths_a_local_server_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, "operator-key")
    target = drill_target(
        base_url="http://127.0.0.1:9000/",
        admin_key_env=KEY_VARIABLE,
        state_dir=str(tmp_path / "state"),
        model_dir=str(tmp_path / "model"),
        server_pid=os.getpid(),
        local=1,  # type: ignore[arg-type]  # an experiment's JSON may say 1 for true
        scratch_dir=str(tmp_path / "scratch"),
    )
    assert target.base_url == "http://127.0.0.1:9000" and target.admin_key == "operator-key"
    assert target.workers == LocalServer(os.getpid())
    assert (target.state_dir, target.model_dir) == (tmp_path / "state", tmp_path / "model")
    assert target.scratch_dir == tmp_path / "scratch" and target.local is True
    assert target.snapshot is None  # load_snapshot was not asked for


def test_the_key_is_needed_only_when_required() -> None:
    with pytest.raises(ConfigError, match=f"{ADMIN_KEY_ENV} holds no admin key"):
        drill_target()
    assert drill_target(key_required=False).admin_key == ""


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://shop", "", None])
def test_base_url_must_be_http_or_https(url: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "k")
    with pytest.raises(ConfigError, match=r"base_url must be an http:// or https:// URL, got "):
        drill_target(base_url=url)  # type: ignore[arg-type]


def test_a_bad_url_is_reported_before_a_missing_key() -> None:
    with pytest.raises(ConfigError, match="base_url must be"):
        drill_target(base_url="gopher://shop")


@pytest.mark.parametrize("pid", [0, -4, "1234", 3.5, True])  # True: a JSON boolean, not pid 1
def test_server_pid_must_be_a_positive_int(pid: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "k")
    with pytest.raises(ConfigError, match=f"server_pid must be a positive process id, got {pid!r}"):
        drill_target(server_pid=pid)  # type: ignore[arg-type]


def test_load_snapshot_reads_it_from_model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "k")
    shop = ShopSim(n_items=60, n_users=40, n_events=600, seed=1).generate()
    ShopSnapshot.from_dataset(shop).save(tmp_path)
    target = drill_target(model_dir=str(tmp_path), load_snapshot=True)
    assert target.snapshot is not None and target.model_dir == tmp_path
    target.require("feature-drift", "snapshot", "model_dir")
    assert drill_target(load_snapshot=True).snapshot is None  # no model_dir: nothing to read


def test_load_snapshot_without_one_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "k")
    with pytest.raises(DataFormatError, match="no shop snapshot"):
        drill_target(model_dir=str(tmp_path), load_snapshot=True)


def test_ca_bundle_is_loaded_into_the_verify_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, "k")
    tls = make_dev_certificate(tmp_path / "tls")
    target = drill_target(base_url="https://127.0.0.1:8443", ca_bundle=str(tls.ca_cert))
    [ca] = target.verify.get_ca_certs()
    assert target.verify.verify_mode is ssl.CERT_REQUIRED and target.verify.check_hostname
    assert any("recdrill" in str(value).lower() for value in ca["subject"])
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("nothing\n")
    with pytest.raises(ConfigError, match="not a readable PEM CA bundle"):
        drill_target(ca_bundle=str(bogus))
