"""Model changes: ``POST /admin/models/reload`` (admin) swaps the served model for a folder or a
registry version; ``/admin/models/canary`` starts (POST, admin), stops (DELETE, admin) or reports
(GET, operator) a canary or shadow of a registry version beside the primary.

A refused model (it does not verify, load or score) leaves the old one serving: the answer is a 422
naming the ``reason`` (a stable slug, also counted in ``recdrill_model_refusals_total``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from recdrill.data.pseudonymise import scrub_text
from recdrill.errors import RecdrillError, StageError, VersionNotFoundError
from recdrill.security.access import require_role
from recdrill.security.roles import Role
from recdrill.serving.canary.controller import CanarySpec
from recdrill.serving.canary.judge import CanaryJudge
from recdrill.serving.openapi import ModelRefusalBody, error_responses
from recdrill.serving.reload import refusal_reason
from recdrill.serving.schemas import (
    CanaryRequest,
    CanaryStarted,
    CanaryStatus,
    CanaryStopped,
    ReloadRequest,
    ReloadResponse,
)
from recdrill.serving.state import StateDep

log = logging.getLogger(__name__)
ADMIN = [Depends(require_role(Role.ADMIN))]
OPERATOR = [Depends(require_role(Role.OPERATOR))]

router = APIRouter()


@router.post(
    "/admin/models/reload",
    dependencies=ADMIN,
    response_model=ReloadResponse,
    responses=error_responses(404, model=ModelRefusalBody),
)
async def reload_model(state: StateDep, body: ReloadRequest | None = None) -> JSONResponse:
    """A folder (``model_dir``), a registry version (``version``), or neither: the configured one."""
    folder = Path(body.model_dir) if body is not None and body.model_dir else None
    version = body.version if body is not None else None
    if folder is None and version is None:
        version = state.config.model_version  # None too: the configured folder
    try:
        if version is not None:
            result = await state.reloader.reload_version(state, version)
        else:
            result = await state.reloader.reload(state, folder)
    except RecdrillError as exc:  # refused (logged and counted by the reloader)
        status = 404 if isinstance(exc, VersionNotFoundError) or _no_folder(folder) else 422
        return _refused(f"reload refused: {exc}", exc, state.model_version, status)
    except Exception as exc:  # anything else still leaves the old model serving; say what it was
        log.exception("model reload failed")
        return _refused(f"reload failed: {type(exc).__name__}: {exc}", exc, state.model_version, 500)
    return JSONResponse(
        {
            "status": "reloaded",
            "model_dir": str(result.model_dir),
            "model_version": result.model_version,
            "previous_version": result.previous_version,
            "load_ms": result.load_ms,
        }
    )


def _no_folder(folder: Path | None) -> bool:
    """Whether the reload named a folder that is not there (a 404, not a refused model)."""
    return folder is not None and not folder.is_dir()


def _refused(message: str, exc: BaseException, serving: str, status: int) -> JSONResponse:
    body = {"error": scrub_text(message), "reason": refusal_reason(exc), "model_version": serving}
    return JSONResponse(body, status_code=status)


@router.post(
    "/admin/models/canary", dependencies=ADMIN, response_model=CanaryStarted, responses=error_responses(404)
)
async def start_canary(body: CanaryRequest, state: StateDep) -> JSONResponse:
    """Load a registry version beside the primary as a canary or a shadow (see ``canary/``)."""
    knobs: dict[str, Any] = {
        "min_samples": body.min_samples,
        "max_ndcg_drop": body.max_ndcg_drop,
        "max_p99_ratio": body.max_p99_ratio,
    }
    try:
        judge = CanaryJudge(**{k: v for k, v in knobs.items() if v is not None})
        spec = CanarySpec(body.version, body.share, body.mode, body.auto_promote, judge)
        summary = await state.canary.start(spec, state.generation)
    except VersionNotFoundError as exc:
        raise HTTPException(404, detail=str(exc)) from exc
    except RecdrillError as exc:  # refused at verification or load, or by its stage
        reason = "stage" if isinstance(exc, StageError) else refusal_reason(exc)
        if reason not in ("stage", "invalid request"):  # the model itself was refused
            state.metrics.refusals.labels(reason).inc()
        log.warning("canary refused (%s): %s", reason, " ".join(str(exc).split()))
        return JSONResponse(
            {"error": scrub_text(f"canary refused: {exc}"), "reason": reason}, status_code=422
        )
    return JSONResponse({"status": "started", **summary})


@router.delete(
    "/admin/models/canary", dependencies=ADMIN, response_model=CanaryStopped, responses=error_responses(404)
)
async def stop_canary(state: StateDep) -> JSONResponse:
    version = await state.canary.stop()
    if version is None:
        raise HTTPException(404, detail="no canary is running")
    return JSONResponse({"status": "stopped", "version": version})


@router.get("/admin/models/canary", dependencies=OPERATOR, response_model=CanaryStatus)
async def canary_status(state: StateDep) -> JSONResponse:
    """Per-arm samples, mean NDCG@10 and p99 latency of this worker, and the judge's verdicts."""
    return JSONResponse(state.canary.summary(state.generation))
