"""``/admin/faults`` (operator): in-process faults at a fault point (ranker, fallback, cache,
feedback), each with a TTL, held in the state folder's table so every worker sees them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from recdrill.security.access import require_role
from recdrill.security.roles import Role
from recdrill.serving.openapi import error_responses
from recdrill.serving.schemas import Fault, FaultRemoved, FaultRequest
from recdrill.serving.state import StateDep

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(require_role(Role.OPERATOR))])


@router.post("/admin/faults", status_code=201, response_model=Fault)
async def add_fault(body: FaultRequest, state: StateDep) -> dict[str, Any]:
    fault = state.faults.add(body.point, body.kind, body.ttl_s, body.latency_ms, body.rate)
    log.warning("fault %s injected: %s at %s for %.0f s", fault.id, fault.kind, fault.point, body.ttl_s)
    return fault.to_dict()


@router.get("/admin/faults", response_model=list[Fault])
async def list_faults(state: StateDep) -> list[dict[str, Any]]:
    return [f.to_dict() for f in state.faults.active(fresh=True)]


@router.delete("/admin/faults/{fault_id}", response_model=FaultRemoved, responses=error_responses(404))
async def remove_fault(fault_id: str, state: StateDep) -> dict[str, str]:
    if not state.faults.remove(fault_id):
        raise HTTPException(404, detail=f"no active fault {fault_id!r}")
    log.warning("fault %s removed", fault_id)
    return {"status": "removed", "id": fault_id}
