"""``LocalDeployment``: what a drill may reach of a local deployment, and a start that fails early.

Starting one for real serves (``tests/drills/test_drill_e2e.py`` does); here the server process is
built but never started, and ``start`` stops at its first step.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.cli.local_deployment import LocalDeployment
from recdrill.contract import API_KEY_HEADER
from recdrill.data.loading import load_dataset
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import leave_one_out
from recdrill.errors import DataFileNotFoundError
from recdrill.security.tls import make_dev_certificate
from recdrill.serving.runtime.local_process import ServerProcess
from tests.cli.conftest import SHOP


def _deployment(tmp_path: Path, server: ServerProcess) -> LocalDeployment:
    split = leave_one_out(load_dataset(SHOP))
    snapshot = ShopSnapshot.from_dataset(split.test.fit_data)
    return LocalDeployment(split, tmp_path / "model", tmp_path / "state", snapshot, server, "local-admin-key")


def test_target_hands_the_drill_everything_of_the_deployment(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "model", tmp_path / "state", workers=2, admin_key="local-admin-key")
    local = _deployment(tmp_path, server)
    target = local.target(tmp_path / "out")
    assert target.base_url == server.url and target.base_url.startswith("http://127.0.0.1:")
    assert target.admin_key == "local-admin-key"
    assert target.workers is server and target.verify is server.verify
    assert (target.state_dir, target.model_dir) == (tmp_path / "state", tmp_path / "model")
    assert target.snapshot is local.snapshot and target.local is True
    assert target.scratch_dir == tmp_path / "out" / "scratch"
    assert target.plan is not None and target.proxy is None
    target.require("any", "workers", "state_dir", "model_dir", "snapshot", "plan", "local")  # all there


def test_traffic_is_anonymous_only_where_the_server_has_no_key_store(
    tmp_path: Path, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = _deployment(tmp_path, ServerProcess(tmp_path / "model", tmp_path / "state"))
    target = local.target(tmp_path / "out")
    assert target.anonymous_traffic is True and target.traffic_headers == {}
    assert main(["keys", "create", "--name", "shoppers", "--role", "writer"]) == 0  # RECDRILL_HOME/keys.db
    capsys.readouterr()
    keyed = local.target(tmp_path / "out")
    assert keyed.anonymous_traffic is False
    assert keyed.traffic_headers == {API_KEY_HEADER: "local-admin-key"}


def test_an_https_deployment_is_drilled_over_https_with_its_own_ca(tmp_path: Path) -> None:
    tls = make_dev_certificate(tmp_path / "tls")
    server = ServerProcess(
        tmp_path / "model", tmp_path / "state", tls_cert=tls.cert, tls_key=tls.key, ca_bundle=tls.ca_cert
    )
    target = _deployment(tmp_path, server).target(tmp_path / "out")
    assert target.base_url.startswith("https://127.0.0.1:")
    assert target.verify is server.verify and target.verify.get_ca_certs()  # the dev CA, not the system store


def test_start_with_missing_data_stops_at_its_first_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with (
        pytest.raises(DataFileNotFoundError, match=r"absent\.txt: no such file"),
        LocalDeployment.start(str(tmp_path / "absent.txt"), 0, out),
    ):
        pytest.fail("a deployment started without data")
    err = capsys.readouterr().err
    assert err.startswith("[1/4] building the shop\n") and "[2/4]" not in err
    assert not (out / "model").exists() and not (out / "state").exists()


def test_a_drill_without_target_and_with_missing_data_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "drill"
    code = main(["drill", "run", "peak-day-short", "--data", str(tmp_path / "absent.txt"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[0] == "[1/4] building the shop" and err[-1].endswith("absent.txt: no such file")
    assert not (out / "model").exists()
