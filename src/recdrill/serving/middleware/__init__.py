"""The app's ASGI middleware, plain ASGI callables (Starlette's ``BaseHTTPMiddleware`` would cost more than
the model call): admission control, request metrics and the worker header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "AdmissionControl": "admission",
    "WorkerLoad": "admission",
    "RequestMetrics": "metrics",
    "WorkerHeader": "worker_header",
}

__all__ = [
    "AdmissionControl",
    "RequestMetrics",
    "WorkerHeader",
    "WorkerLoad",
]

if TYPE_CHECKING:
    from recdrill.serving.middleware.admission import AdmissionControl, WorkerLoad
    from recdrill.serving.middleware.metrics import RequestMetrics
    from recdrill.serving.middleware.worker_header import WorkerHeader


__getattr__ = lazy_getattr("recdrill.serving.middleware", _EXPORTS, globals())
