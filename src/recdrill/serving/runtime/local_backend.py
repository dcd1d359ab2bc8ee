"""The local backend (``recdrill serve``): the app under uvicorn in this process, with one worker
or several.

Several workers (``--workers N``, N > 1) are uvicorn's multiprocess supervisor and N spawned worker
processes sharing one listening socket. The supervisor checks each worker every half second (a ping
answered by a thread in the worker, ``WORKER_HEALTHCHECK_S`` to answer) and starts a replacement for
one that died or stopped answering (so a worker SIGSTOPped for longer than that is killed and
replaced). The replacement loads the model before it accepts connections; until then the kernel
hands every new connection to the surviving workers.

What a client sees when a worker dies (SIGKILL, OOM kill, segfault):

* a request the worker had read and not answered: the connection closes without a response
  (httpx ``RemoteProtocolError: Server disconnected without sending a response``); one still unread
  in the worker's socket buffer: a reset (``ReadError: [Errno 104] Connection reset by peer``);
* an idle keep-alive connection to it: closed; httpx notices before reusing it and reconnects,
  so the next request succeeds (a request racing the close may see the errors above);
* new connections: accepted by the other workers; nothing fails.

So each failure is a transport error, never an HTTP status: an idempotent request
(``/v1/recommend``) can be retried once on a new connection; a feedback post must not be retried
blindly, because "connection closed" does not say whether its commit happened.

HTTPS (``ServerTls``): uvicorn terminates TLS in each worker, which loads the certificate and key
itself, so ``--workers N`` serves HTTPS the same way. The probes here verify the server's
certificate against the caller's CA bundle (:func:`recdrill.security.tls.client_ssl_context`);
a certificate they cannot verify stops the start at once, since waiting would not change it.

"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from recdrill.serving.config import ServeConfig
from recdrill.serving.middleware.worker_header import WorkerHeader
from recdrill.serving.runtime.protocol import GuardedHttpToolsProtocol

SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WORKER_HEALTHCHECK_S = 5  # uvicorn's default, named here because drills depend on it


def worker_app_from_env() -> WorkerHeader:
    """The factory each uvicorn worker calls: the app of ``RECDRILL_*`` variables, pid-tagged."""
    from recdrill.serving.app import app_from_env  # a worker imports the app; the CLI need not

    return WorkerHeader(app_from_env())


@dataclass(frozen=True)
class ServerTls:
    """The PEM certificate (chain) and private key a server presents for HTTPS."""

    cert: Path
    key: Path


def run_server(
    config: ServeConfig,
    host: str,
    port: int,
    workers: int,
    admin_key: str | None,
    *,
    tls: ServerTls | None = None,
) -> None:
    """Serve until stopped, over HTTPS when ``tls`` is given. Several workers each get one BLAS
    thread (they would fight over cores) and share Prometheus values through a multiprocess
    directory."""
    import uvicorn  # imported here: only the serve command needs it

    os.environ.update(config.to_env(admin_key))
    # What the workers will read: a knob without a ``recdrill serve`` flag (the connection cap, the
    # keep-alive) comes from the environment, and the server's own options must agree with it.
    config = type(config).from_env()
    if workers > 1:
        for name, value in SINGLE_THREAD_ENV.items():
            os.environ.setdefault(name, value)
        # Values of a previous run would be added to this one's: start from an empty directory.
        metrics_dir = config.state_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "recdrill.serving.runtime.local_backend:worker_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        # Slow and idle clients (see ``protocol.py`` and ``ServeConfig``): header deadline and size,
        # idle keep-alive, and a per-worker cap on connections.
        http=GuardedHttpToolsProtocol,
        timeout_keep_alive=max(1, round(config.keep_alive_s)),
        limit_concurrency=config.max_connections,
        log_level="warning",
        access_log=False,
        ssl_certfile=None if tls is None else str(tls.cert),
        ssl_keyfile=None if tls is None else str(tls.key),
    )
