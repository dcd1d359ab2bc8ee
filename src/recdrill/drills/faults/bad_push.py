"""The bad model push: a loadable but much worse model version reloaded as the primary.

Unlike the artifact faults (:mod:`recdrill.drills.faults.artifact`), which a server must refuse,
this one is accepted on purpose: a quality regression that no load check catches, only the drill's
NDCG measurement. Revert serves the version from before again on every worker.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from recdrill.data.snapshot import ShopSnapshot
from recdrill.drills.faults._artifact_ledger import (
    ArtifactHandle,
    finish,
    leftovers_of,
    scratch_folder,
    start_handle,
    undone_on_error,
)
from recdrill.drills.faults.catalogue import FaultParams, FaultType, Observations, register
from recdrill.drills.target import DrillTarget
from recdrill.errors import ArtifactFaultError


def degraded_model(source: Path, dest: Path, seed: int) -> Path:
    """A copy of the model folder ``source`` whose primary is popularity over shuffled item counts.

    Loadable, finite-scoring and for the same catalogue (the shop snapshot and any ``fallback/``
    are copied as they are, so ids line up), but its ranking ignores both the user and the real
    best-sellers: about as good as random.
    """
    from recdrill.models.popularity import PopularityRecommender  # the model stack: only when needed

    shutil.copytree(source, dest, symlinks=False)
    snapshot = ShopSnapshot.load(source)
    meta: dict[str, Any] = json.loads((source / "model.json").read_text())
    counts = np.random.default_rng(seed).permutation(snapshot.item_counts.astype(np.float64)) + 1.0
    model = PopularityRecommender()
    model.n_items_ = snapshot.n_items
    model.fingerprint_ = str(meta["fingerprint"])
    model.trained_on_ = str(meta.get("trained_on", ""))
    model.share_ = (counts / counts.sum()).astype(np.float32)
    (dest / "state.npz").unlink()
    model.save(dest)
    return dest


class BadPushParams(FaultParams):
    model_dir: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="a model folder to push; default: a degraded copy of the served model",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="shuffles the degraded model's item counts")


def inject_bad_push(target: DrillTarget, params: BadPushParams) -> ArtifactHandle:
    model_dir = target.need_model_dir("bad-model-push")
    handle = start_handle(target, "bad-model-push")
    with undone_on_error(handle):
        if params.model_dir is not None:
            folder = Path(params.model_dir).expanduser().resolve()
            if not (folder / "model.json").is_file():
                raise ArtifactFaultError(f"fault 'bad-model-push': {folder} is not a saved model folder")
        else:
            folder = degraded_model(model_dir, scratch_folder(target, handle) / "model", params.seed)
        response = target.reload({"model_dir": str(folder)})
        if response.status_code != 200:
            raise ArtifactFaultError(
                f"fault 'bad-model-push': the server refused the pushed model: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
    pushed = str(response.json()["model_version"])
    handle.observations = {"pushed_version": pushed}
    handle.served_after = target.wait_converged(pushed)  # every worker serves it: the fault is whole
    return handle


def revert_bad_push(target: DrillTarget, _: BadPushParams, handle: ArtifactHandle) -> Observations:
    if not handle.reverted:
        versions = set(target.restore_model(handle.version_before).values())
        restored = versions == {handle.version_before}
        handle.observations["restored_version"] = versions.pop() if len(versions) == 1 else None
        handle.observations["restored"] = restored
        if restored:
            finish(target, handle)
        else:  # keep the folder a worker may still serve from; the leftovers check names it
            handle.reverted = True
    return handle.observations


register(
    FaultType(
        name="bad-model-push",
        kind="ml",
        summary="reload a loadable but much worse model (popularity over shuffled counts) as the primary",
        params=BadPushParams,
        inject=inject_bad_push,
        revert=revert_bad_push,
        needs=frozenset({"model_dir"}),
        effect="the reload is accepted: no errors, no failover, NDCG@10 of served answers collapses",
        detected_by=frozenset(),
        leftovers=leftovers_of("bad-model-push"),
    )
)
