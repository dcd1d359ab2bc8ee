"""How the API answers a refusal or a failure: every error body is JSON with an ``"error"`` key, and
nothing a client sent comes back (or goes into a log) unscrubbed.

A 422 lists the invalid fields (their locations and messages scrubbed of e-mail addresses and phone
numbers, since a message may echo the input); an ``HTTPException`` keeps its status and headers with
its detail scrubbed; anything unexpected is a 500 with no detail, logged by exception type only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recdrill.data.pseudonymise import scrub_text

log = logging.getLogger(__name__)


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422: which fields are invalid and why, scrubbed."""
    errors = [
        {
            "loc": [p if isinstance(p, int) else scrub_text(str(p)) for p in e["loc"]],
            "msg": scrub_text(e["msg"]),
            "type": e["type"],
        }
        for e in exc.errors()
    ]
    return JSONResponse({"error": "invalid request", "detail": errors}, status_code=422)


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The same body shape as the 422, so a client reads every refusal from ``"error"``. A detail may
    echo the request (a category, a path): e-mail addresses and phone numbers are scrubbed."""
    detail = scrub_text(exc.detail) if isinstance(exc.detail, str) else exc.detail
    return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    """500 with no detail: the traceback goes to the (scrubbing) log, never to the client."""
    log.exception("unhandled error: %s", type(exc).__name__)
    return JSONResponse({"error": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the three handlers on ``app``."""
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(Exception)(internal_error)
