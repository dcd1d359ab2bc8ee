"""``recdrill registry`` and ``recdrill keys``: the JSON and exit codes scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recdrill._home import HOME_ENV
from recdrill.cli import main
from recdrill.digests import write_digests
from recdrill.registry.keys import DATA_KEY_ENV, SIGNING_KEY_ENV, KeyFiles


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(root))
    for name in (SIGNING_KEY_ENV, DATA_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_init_then_push_json_then_verify(
    cli_home: Path, saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "keys", "init")
    files = KeyFiles(cli_home)
    made = [str(files.signing), str(files.signing_public), str(files.data), str(files.watermark)]
    assert code == 0 and out.split() == [word for path in made for word in ("created", path)]
    key_text = files.data.read_text().strip()

    metrics = tmp_path / "eval.json"
    metrics.write_text(json.dumps({"model": "itemknn", "metrics": {"NDCG@10": 0.31, "HR@10": 0.5}}))
    code, out, _ = run(capsys, "registry", "push", str(saved_model), "--metrics", str(metrics), "--json")
    pushed = json.loads(out)
    assert code == 0 and set(pushed) == {"version", "path"} and pushed["version"] == "v1"
    path = Path(pushed["path"])
    assert path.is_dir() and path.parent == cli_home / "artifacts" and (path / "manifest.json").is_file()

    code, out, err = run(capsys, "registry", "verify", "v1")
    assert (code, err) == (0, "") and out.startswith("v1: ok")

    code, out, _ = run(capsys, "registry", "show", "v1")
    shown = json.loads(out)
    assert code == 0 and shown["stage"] == "candidate" and shown["metrics"] == {"NDCG@10": 0.31, "HR@10": 0.5}
    assert shown["path"] == str(path)
    assert key_text not in out


def test_verify_of_a_tampered_artifact_exits_non_zero_with_one_line(
    cli_home: Path, saved_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "keys", "init")
    _, out, _ = run(capsys, "registry", "push", str(saved_model), "--json")
    stored = Path(json.loads(out)["path"]) / "files" / "state.npz"
    data = bytearray(stored.read_bytes())
    data[100] ^= 0x80
    stored.write_bytes(bytes(data))
    code, out, err = run(capsys, "registry", "verify", "v1")
    assert code == 7 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("recdrill: error: v1: refused (digest mismatch): files/state.npz")
    code, _, err = run(capsys, "registry", "verify", "v7")
    assert code == 6 and "no registered version 'v7'" in err


def test_promote_rollback_and_list(
    cli_home: Path, saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for path in saved_model.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    meta = json.loads((other / "model.json").read_text())
    meta["params"]["neighbours"] = 7  # same arrays, another parameter: another content address
    (other / "model.json").write_text(json.dumps(meta))
    write_digests(other)  # saved as such: its digests list the new parameter
    run(capsys, "keys", "init")
    run(capsys, "registry", "push", str(saved_model))
    run(capsys, "registry", "push", str(other), "--parent", "v1")
    assert run(capsys, "registry", "promote", "v1")[:2] == (0, "v1 is now production\n")
    assert run(capsys, "registry", "promote", "v2", "canary")[:2] == (0, "v2 is now canary\n")
    assert run(capsys, "registry", "promote", "v2", "production")[0] == 0
    assert run(capsys, "registry", "rollback")[:2] == (0, "production: v2 -> v1\n")
    code, out, _ = run(capsys, "registry", "list", "--json")
    assert [(row["version"], row["stage"], row["parent"]) for row in json.loads(out)] == [
        ("v1", "production", None),
        ("v2", "archived", "v1"),
    ]
    code, _, err = run(capsys, "registry", "promote", "v2", "live")
    assert code == 6 and "unknown stage 'live'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "registry", "rollback")
    assert code == 6 and "no previous production version" in err


def test_rotate_data_key_from_the_command_line(
    cli_home: Path, saved_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "keys", "init")
    _, out, _ = run(capsys, "registry", "push", str(saved_model), "--json")
    stored = Path(json.loads(out)["path"]) / "files" / "state.npz"
    before, old_key = stored.read_bytes(), KeyFiles(cli_home).data.read_text().strip()
    code, out, err = run(capsys, "keys", "rotate-data-key")
    new_key = KeyFiles(cli_home).data.read_text().strip()
    assert code == 0 and out.startswith("re-encrypted 1 artifact(s); data key is now ")
    assert new_key != old_key and old_key not in out + err and new_key not in out + err
    assert stored.read_bytes() != before
    assert run(capsys, "registry", "verify", "v1")[0] == 0


def test_verify_in_a_real_process_reports_on_stderr(
    cli_home: Path, saved_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "keys", "init")
    _, out, _ = run(capsys, "registry", "push", str(saved_model), "--json")
    env = {**os.environ, HOME_ENV: str(cli_home)}
    command = [sys.executable, "-m", "recdrill", "registry", "verify", "v1"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    (Path(json.loads(out)["path"]) / "signature.sigstore.json").unlink()
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 7
    assert refused.stderr.strip().splitlines() == [
        "recdrill: error: v1: refused (unsigned): signature.sigstore.json is missing"
    ]


def test_serve_refuses_a_tampered_registry_version_before_starting(
    cli_home: Path, saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "keys", "init")
    _, out, _ = run(capsys, "registry", "push", str(saved_model), "--json")
    stored = Path(json.loads(out)["path"])
    victim = max((p for p in stored.rglob("*") if p.is_file() and p.name != "manifest.json"), key=_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    state = tmp_path / "state"
    code, _, err = run(capsys, "serve", "--registry-version", "v1", "--state-dir", str(state), "--port", "0")
    assert code != 0 and "digest mismatch" in err and len(err.strip().splitlines()) == 1
    assert not (state / "models" / "v1").exists()  # nothing decrypted, nothing served


def _size(path: Path) -> int:
    return path.stat().st_size
