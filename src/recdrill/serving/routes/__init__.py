"""The API's routes, one FastAPI ``APIRouter`` per concern; ``create_app`` includes them in order."""

from __future__ import annotations

from fastapi import APIRouter

from recdrill.serving.routes import faults, feedback, health, models, recommend

ROUTERS: tuple[APIRouter, ...] = (
    recommend.router,
    feedback.router,
    health.router,
    faults.router,
    models.router,
)

__all__ = ["ROUTERS"]
