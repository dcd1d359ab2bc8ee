"""/admin/models/reload and /admin/models/canary on the shared route server: refusals keep the old
model serving, and the canary endpoints answer for no canary at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.serving.routes.conftest import ADMIN


def serving(api: httpx.Client) -> str:
    version: str = api.get("/readyz").json()["model_version"]
    return version


def test_a_reload_without_a_body_reloads_the_configured_folder(
    api: httpx.Client, routes_model_dir: Path
) -> None:
    version = serving(api)
    response = api.post("/admin/models/reload", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "model_dir", "model_version", "previous_version", "load_ms"}
    assert body["status"] == "reloaded"
    assert Path(body["model_dir"]) == routes_model_dir
    assert body["model_version"] == body["previous_version"] == version  # the same files: the same version
    assert body["load_ms"] >= 0
    assert serving(api) == version


def test_a_reload_to_another_folder_serves_it_and_names_it(
    api: httpx.Client, routes_model_dir: Path, tmp_path: Path
) -> None:
    copy = shutil.copytree(routes_model_dir, tmp_path / "copy")
    try:
        moved = api.post("/admin/models/reload", json={"model_dir": str(copy)}, headers=ADMIN)
        assert moved.status_code == 200, moved.text
        assert Path(moved.json()["model_dir"]) == copy
        assert api.post("/v1/recommend", json={"user_id": "u0", "k": 3}).json()["served_by"] == "primary"
    finally:  # back to the configured folder for the other tests
        assert api.post("/admin/models/reload", headers=ADMIN).status_code == 200


def test_a_folder_that_is_not_there_is_a_404_with_its_reason_and_the_old_model_kept(
    api: httpx.Client, tmp_path: Path
) -> None:
    version = serving(api)
    missing = tmp_path / "no-model"
    response = api.post("/admin/models/reload", json={"model_dir": str(missing)}, headers=ADMIN)
    assert response.status_code == 404  # not found: a folder that is there and does not load is a 422
    assert response.json() == {
        "error": f"reload refused: {missing}: no such model folder",
        "reason": "invalid model",
        "model_version": version,
    }
    assert serving(api) == version
    assert api.post("/v1/recommend", json={"user_id": "u0", "k": 3}).json()["model_version"] == version


def test_a_corrupt_model_file_is_refused_as_an_invalid_model(
    api: httpx.Client, routes_model_dir: Path, tmp_path: Path
) -> None:
    version = serving(api)
    broken = shutil.copytree(routes_model_dir, tmp_path / "broken")
    (broken / "state.npz").write_bytes(b"not a model")
    response = api.post("/admin/models/reload", json={"model_dir": str(broken)}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["reason"] == "invalid model"
    assert response.json()["model_version"] == version
    assert serving(api) == version


def test_a_version_name_that_could_escape_its_folder_is_refused_by_the_schema(api: httpx.Client) -> None:
    response = api.post("/admin/models/reload", json={"version": "../escape"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "version"]


def test_an_unknown_registry_version_is_a_404_by_reason(api: httpx.Client) -> None:
    body = {"version": "v404"}
    version = serving(api)
    response = api.post("/admin/models/reload", json=body, headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["reason"] == "unknown version"
    assert body["version"] in response.json()["error"]
    assert response.json()["model_version"] == version == serving(api)


def test_a_folder_and_a_version_together_are_refused(api: httpx.Client, routes_model_dir: Path) -> None:
    response = api.post(
        "/admin/models/reload", json={"model_dir": str(routes_model_dir), "version": "v1"}, headers=ADMIN
    )
    assert response.status_code == 422
    assert "give model_dir or version, not both" in response.json()["detail"][0]["msg"]


def test_the_model_endpoints_need_a_key(api: httpx.Client) -> None:
    assert api.post("/admin/models/reload").status_code == 401
    assert api.get("/admin/models/canary").status_code == 401
    assert api.delete("/admin/models/canary").status_code == 401
    assert api.post("/admin/models/canary", json={"version": "v1", "share": 0.5}).status_code == 401


# --- canary ---------------------------------------------------------------------------------------


def test_without_a_canary_the_status_names_only_the_primary(api: httpx.Client) -> None:
    response = api.get("/admin/models/canary", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is False
    assert body["arms"]["primary"]["version"] == serving(api)
    assert body["arms"]["candidate"]["version"] is None
    assert body["verdict"] is None and body["decisions"] == []
    assert "version" not in body and "share" not in body


def test_stopping_when_no_canary_runs_is_a_404(api: httpx.Client) -> None:
    response = api.delete("/admin/models/canary", headers=ADMIN)
    assert response.status_code == 404
    assert response.json() == {"error": "no canary is running"}


def test_a_canary_of_an_unknown_version_is_a_404(api: httpx.Client) -> None:
    response = api.post("/admin/models/canary", json={"version": "v404", "share": 0.5}, headers=ADMIN)
    assert response.status_code == 404
    assert "no registered version 'v404'" in response.json()["error"]
    assert api.get("/admin/models/canary", headers=ADMIN).json()["active"] is False


def test_a_canary_of_the_primarys_own_version_is_refused_as_an_invalid_request(api: httpx.Client) -> None:
    version = serving(api)
    response = api.post("/admin/models/canary", json={"version": version, "share": 0.5}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json() == {
        "error": f"canary refused: {version} is the primary model already",
        "reason": "invalid request",
    }


def test_a_canary_share_outside_its_range_is_a_422(api: httpx.Client) -> None:
    response = api.post("/admin/models/canary", json={"version": "v1", "share": 1.5}, headers=ADMIN)
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["body", "share"]]
