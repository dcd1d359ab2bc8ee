"""``recdrill serve``: everything it refuses before a worker starts (one line, the error's exit code),
``--require-signed`` included (a server started with it: ``tests/serving/test_registry_reload.py``).

No test here lets the command get as far as serving: each one fails a check first.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from recdrill.cli import main
from recdrill.digests import write_digests
from recdrill.security.tls import make_dev_certificate
from tests.cli.conftest import SHOP


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "knn"
    assert main(["train", "--data", SHOP, "--model", "itemknn", "--out", str(out)]) == 0
    return out


def serve(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    code = main(["serve", "--state-dir", str(tmp_path / "state"), "--port", "0", *args])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.strip().splitlines()


@pytest.mark.parametrize(
    "args",
    [[], ["--model", "MODEL", "--registry-version", "v1"]],
    ids=["neither", "both"],
)
def test_exactly_one_model_source_is_required(
    args: list[str], model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, *[str(model_dir) if a == "MODEL" else a for a in args])
    assert code == 2 and err[-1] == "Error: give exactly one of --model and --registry-version"


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda d: d / "nothere", 5, "nothere: no such model folder"),
        (lambda d: d, 5, "missing model.json: not a saved recdrill model"),
    ],
    ids=["missing", "empty"],
)
def test_a_model_folder_that_cannot_load_stops_the_command(
    make: Callable[[Path], Path], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    target = make(folder)
    got, err = serve(capsys, tmp_path, "--model", str(target))
    assert got == code and len(err) == 1
    assert err[0].startswith("recdrill: error: ") and message in err[0]


def test_a_model_without_its_shop_snapshot_exits_4(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "no-snapshot"
    shutil.copytree(model_dir, copy)
    (copy / "snapshot.npz").unlink()
    snapshot = copy / "snapshot.npz"
    code, err = serve(capsys, tmp_path, "--model", str(copy))  # removed after the save: its digests say so
    assert code == 5 and err == [
        f"recdrill: error: {snapshot}: missing: digests.json lists it, but it is not a file in the folder"
    ]
    write_digests(copy)  # a model saved without a snapshot
    code, err = serve(capsys, tmp_path, "--model", str(copy))
    assert code == 4
    assert err == [f"recdrill: error: {snapshot}: no shop snapshot: was the model saved by 'recdrill train'?"]


def test_a_broken_fallback_model_stops_the_command(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    code, err = serve(capsys, tmp_path, "--model", str(model_dir), "--fallback-model", str(fallback))
    assert code == 5 and err == [
        f"recdrill: error: {fallback}: missing model.json: not a saved recdrill model"
    ]


def test_an_unknown_registry_version_exits_6_and_decrypts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--registry-version", "v1")
    assert code == 6 and err == [
        "recdrill: error: no registered version 'v1'; 'recdrill registry list' shows them"
    ]
    assert not (tmp_path / "state" / "models" / "v1").exists()


def test_require_signed_refuses_a_model_folder_before_loading_it(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--require-signed", "--model", str(model_dir))
    assert code == 2 and err == [
        "recdrill: error: --require-signed serves only registry versions that verify: give "
        "--registry-version VERSION, not --model FOLDER ('recdrill registry push FOLDER' registers a folder)"
    ]


def test_require_signed_refuses_a_plain_fallback_beside_a_version(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--require-signed", "--registry-version", "v1", "--fallback-model", str(model_dir))
    code, err = serve(capsys, tmp_path, *args)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(
        f"recdrill: error: --require-signed serves only registry versions that verify, and the fallback "
        f"{model_dir} is a plain folder: leave out --fallback-model"
    )
    assert not (tmp_path / "state" / "models").exists()  # refused before the registry was asked


def test_require_signed_takes_a_registry_version_to_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--require-signed", "--registry-version", "v1")
    assert code == 6 and err == [
        "recdrill: error: no registered version 'v1'; 'recdrill registry list' shows them"
    ]


def test_an_unusable_data_key_is_one_line_before_serving(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RECDRILL_FEEDBACK_PSEUDONYMS_ONLY", raising=False)
    monkeypatch.setenv("RECDRILL_DATA_KEY", "garbage")
    code, err = serve(capsys, tmp_path, "--model", str(model_dir))
    assert code == 2 and len(err) == 1
    assert err[0].startswith("recdrill: error: unusable data key for feedback user ids (RECDRILL_DATA_KEY")
    assert "RECDRILL_FEEDBACK_PSEUDONYMS_ONLY=1" in err[0]


def test_tls_cert_and_key_go_together(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = make_dev_certificate(tmp_path / "tls")
    for option, path in (("--tls-cert", files.cert), ("--tls-key", files.key)):
        code, err = serve(capsys, tmp_path, "--model", str(model_dir), option, str(path))
        assert code == 2 and err[-1] == "Error: --tls-cert and --tls-key go together: give both or neither"


def test_tls_files_a_server_cannot_load_are_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    code, err = serve(
        capsys, tmp_path, "--model", str(model_dir), "--tls-cert", str(bogus), "--tls-key", str(bogus)
    )
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"recdrill: error: {bogus} with {bogus}: cannot serve TLS (")


def test_a_readable_tls_key_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = make_dev_certificate(tmp_path / "tls")
    files.key.chmod(0o644)
    broken = tmp_path / "broken"
    broken.mkdir()  # so that the command stops after the TLS checks, before serving
    args = ["--model", str(broken), "--tls-cert", str(files.cert), "--tls-key", str(files.key)]
    code, err = serve(capsys, tmp_path, *args)
    assert code == 5
    assert err[0] == f"warning: {files.key} is readable by group or others; chmod 600 it"
    assert err[1].startswith("recdrill: error: ") and len(err) == 2


def test_tls_is_refused_with_the_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = make_dev_certificate(tmp_path / "tls")
    args = ["--model", "m", "--backend", "ray", "--tls-cert", str(files.cert), "--tls-key", str(files.key)]
    code, err = serve(capsys, tmp_path, *args)
    assert code == 2 and "are for --backend local: Ray Serve terminates TLS in its own proxy" in err[-1]


def test_workers_are_refused_with_the_ray_backend(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--model", str(model_dir), "--backend", "ray", "--workers", "2")
    assert code == 2 and err[-1] == "Error: --workers is for --backend local; Ray scales with --max-replicas"


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed here")
def test_the_ray_backend_without_ray_installed_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--model", str(tmp_path / "not-loaded"), "--backend", "ray")
    assert code == 2 and err == ["recdrill: error: Ray Serve is not installed: pip install 'recdrill[ray]'"]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--port", "70000"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--deadline-ms", "0.5"], "--deadline-ms"),
        (["--backend", "k8s"], "--backend"),
        (["--max-in-flight", "0"], "--max-in-flight"),
    ],
)
def test_out_of_range_options_are_usage_errors(
    args: list[str], option: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = serve(capsys, tmp_path, "--model", str(model_dir), *args)
    assert code == 2 and f"Invalid value for '{option}'" in err[-1]
