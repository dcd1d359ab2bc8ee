"""The Ray Serve backend: the same FastAPI app (``create_app``) as replicas that Ray starts, restarts
and autoscales, for when one machine's uvicorn workers are not enough.

Set up for small machines: fractional CPUs per replica (so autoscaling can place a third replica on
two cores), no dashboard, ``RAY_AUTH_MODE=disabled``, Ray's session files inside the state directory
and one BLAS thread per replica. Admission control has two layers: the app's own (``max_in_flight``
per replica, a 429 with ``Retry-After`` and a JSON body), and behind it Ray's ``max_queued_requests``,
set to answer 429 with ``Retry-After`` too rather than Ray's default 503 (its body is Ray's plain
text). ``max_ongoing_requests`` defaults above the app's limit so that the app's answer comes first.

Where the time goes on two cores (``benchmarks/ray_serve.py``): with Ray's Python HTTP proxy, every
request crosses the proxy actor, the router and a Ray actor call into the replica. Measured per
request: ~6 ms of CPU in the proxy and ~7 ms in the replica, around a model call of 0.3-0.5 ms, so
batching model calls cannot help much; the ingress must be lighter. The default ``ingress="direct"``
uses Ray Serve's direct ingress: each replica serves HTTP itself (uvicorn in the replica) and Ray's
bundled HAProxy, a C load balancer, spreads connections over the replicas: ~0.2 ms in HAProxy and
~2 ms in the replica per request, about 5x the plain deployment's throughput. ``ingress="proxy"``
keeps Ray's Python proxy.

Ray is an optional extra (``pip install 'recdrill[ray]'``); without it, every entry point raises
``RayNotInstalledError`` with that one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from recdrill.errors import ConfigError, RayNotInstalledError
from recdrill.serving.config import ServeConfig
from recdrill.serving.runtime.child import free_port
from recdrill.serving.runtime.local_backend import SINGLE_THREAD_ENV

Ingress = Literal["direct", "proxy"]
APP_NAME = "recdrill"
# Ray puts its plasma socket at <temp dir>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store:
# up to 64 characters after the temp dir (7-digit pids), and a socket path holds at most 107.
MAX_TEMP_DIR_CHARS = 43
DRAIN_S = 2.0
REPLICA_ENV = SINGLE_THREAD_ENV
ENV_SERVER_ID = "RECDRILL_SERVER_ID"  # read by recdrill.serving.reload.server_group


def ensure_ray_installed() -> None:
    """Raise ``RayNotInstalledError`` without importing Ray Serve, whose flags must be set first."""
    try:
        found = importlib.util.find_spec("ray.serve") is not None
    except (ImportError, ValueError):  # ValueError: a parent package without a spec
        found = False
    if not found:
        raise RayNotInstalledError()


def require_ray() -> tuple[ModuleType, ModuleType]:
    """``(ray, ray.serve)``, or ``RayNotInstalledError`` when the extra is missing."""
    try:
        ray = importlib.import_module("ray")
        serve = importlib.import_module("ray.serve")
    except ImportError as exc:
        raise RayNotInstalledError() from exc
    return ray, serve


@dataclass(frozen=True)
class RayOptions:
    """How many replicas, how they scale, how much each may queue, and where Ray listens.

    ``target_ongoing_requests`` is what the autoscaler aims for per replica; ``max_ongoing_requests``
    caps what one replica runs at once and ``max_queued_requests`` what may wait beyond that before
    a 429. ``num_cpus`` is what Ray may use in all (default: every core).
    """

    min_replicas: int = 1
    max_replicas: int = 2
    initial_replicas: int | None = None
    target_ongoing_requests: float = 4.0
    max_ongoing_requests: int = 64
    max_queued_requests: int = 64
    cpus_per_replica: float = 0.5
    num_cpus: int | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    ingress: Ingress = "direct"
    upscale_delay_s: float = 3.0
    downscale_delay_s: float = 30.0
    retry_after_s: int = 1
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("min_replicas", self.min_replicas >= 0, "a count >= 0"),
            ("max_replicas", self.max_replicas >= max(1, self.min_replicas), "a count >= min_replicas"),
            ("target_ongoing_requests", self.target_ongoing_requests > 0, "positive"),
            ("max_ongoing_requests", self.max_ongoing_requests >= 1, "a count >= 1"),
            ("max_queued_requests", self.max_queued_requests >= -1, "-1 (unbounded) or a count"),
            ("cpus_per_replica", 0 < self.cpus_per_replica <= 64, "in (0, 64]"),
            ("http_port", 0 < self.http_port < 65536, "a TCP port"),
            ("ingress", self.ingress in ("direct", "proxy"), "'direct' or 'proxy'"),
            ("upscale_delay_s", self.upscale_delay_s >= 0, ">= 0"),
            ("downscale_delay_s", self.downscale_delay_s >= 0, ">= 0"),
        ]
        if self.initial_replicas is not None:
            fits = self.min_replicas <= self.initial_replicas <= self.max_replicas
            checks.append(("initial_replicas", fits, "between min_replicas and max_replicas"))
        if self.num_cpus is not None:
            checks.append(("num_cpus", self.num_cpus >= 1, "a count >= 1"))
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"Ray option {name} must be {expected}, got {getattr(self, name)!r}")

    def ray_temp_dir(self, state_dir: Path) -> Path:
        """Ray's session files: inside the state directory, unless that path is too long for sockets."""
        path = (self.temp_dir or state_dir / "ray").absolute()
        if len(str(path)) > MAX_TEMP_DIR_CHARS:
            raise ConfigError(
                f"Ray temp dir {path} is {len(str(path))} characters; Ray's unix socket paths need it "
                f"at most {MAX_TEMP_DIR_CHARS}: use a shorter --state-dir"
            )
        return path

    def actor_options(self) -> dict[str, Any]:
        """Each replica's share of a CPU, one BLAS thread (replicas would fight over cores), and the
        server's id, so that every replica follows a reload made through any one of them."""
        env = dict(REPLICA_ENV)
        if os.environ.get(ENV_SERVER_ID):
            env[ENV_SERVER_ID] = os.environ[ENV_SERVER_ID]
        return {"num_cpus": self.cpus_per_replica, "runtime_env": {"env_vars": env}}

    def environment(self, haproxy_dir: Path) -> dict[str, str]:
        """Variables Ray's processes must see before they start (Ray reads them at import).

        ``haproxy_dir`` holds HAProxy's config and sockets (direct ingress only); by default they
        go to one fixed folder that every Ray on the machine shares.
        """
        env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **REPLICA_ENV}
        if self.ingress == "direct":
            haproxy = haproxy_dir
            env |= {
                "RAY_SERVE_ENABLE_HA_PROXY": "1",  # implies direct ingress on every replica
                # A stopping replica keeps serving this long so HAProxy can take it out of rotation;
                # Ray's 30 s default is for clusters of many nodes, not one machine.
                "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DRAIN_S),
                "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy / "haproxy.cfg"),
                "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy / "admin.sock"),
                "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy),
                "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy / "server-state"),
                "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(haproxy / "metrics.sock"),
                "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port(self.http_host)),
                "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port(self.http_host)),
            }
        return env


def build_application(config: ServeConfig, options: RayOptions) -> Any:
    """The recdrill app as a Ray Serve application (``Deployment.bind``), ready for ``serve.run``.

    The FastAPI app is built on each replica (``__serve_build_asgi_app__``), not pickled from here:
    it owns a Prometheus registry, SQLite connections and the loaded model.
    """
    _, serve = require_ray()
    # Imported by name, so type checks pass without the optional extra installed.
    serve_config = importlib.import_module("ray.serve.config")

    class RecdrillReplica:
        """One replica: ``create_app(config)``; its lifespan loads the model on this replica."""

        def __init__(self, serve_config: ServeConfig) -> None:
            self.serve_config = serve_config

        def __serve_build_asgi_app__(self) -> Any:
            from recdrill.serving.app import create_app

            return create_app(self.serve_config)

    autoscaling = serve_config.AutoscalingConfig(
        min_replicas=options.min_replicas,
        max_replicas=options.max_replicas,
        initial_replicas=options.initial_replicas,
        target_ongoing_requests=options.target_ongoing_requests,
        upscale_delay_s=options.upscale_delay_s,
        downscale_delay_s=options.downscale_delay_s,
    )
    deployment = serve.deployment(
        serve.ingress()(RecdrillReplica),
        name=APP_NAME,
        ray_actor_options=options.actor_options(),
        autoscaling_config=autoscaling,
        max_ongoing_requests=options.max_ongoing_requests,
        max_queued_requests=options.max_queued_requests,
        backpressure_config=serve_config.BackpressureConfig(
            status_code=429, retry_after_s=options.retry_after_s
        ),
    )
    return deployment.bind(config)


@contextlib.contextmanager
def ray_cluster(state_dir: Path, options: RayOptions) -> Iterator[ModuleType]:
    """A local Ray cluster and Serve instance for this process; both are shut down on exit.

    Yields ``ray.serve``. The environment is set before Ray is imported, because Ray Serve reads
    its feature flags once, at import, in this process and in every process it starts. From then
    on SIGTERM and SIGINT raise ``StopServing`` in the main thread.
    """
    temp_dir = options.ray_temp_dir(state_dir)
    temp_dir.mkdir(parents=True, exist_ok=True)
    # Not under the state directory: Ray adds a 56-character folder and HAProxy allows socket paths
    # of at most 97 characters.
    haproxy_dir = Path(tempfile.mkdtemp(prefix="rdh-", dir="/tmp" if Path("/tmp").is_dir() else None))
    os.environ.update(options.environment(haproxy_dir))
    ray, serve = require_ray()
    ray.init(
        num_cpus=options.num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        _temp_dir=str(temp_dir),
        log_to_driver=False,
        logging_level="WARNING",
    )
    # Now, not earlier: ray.init installs a SIGTERM handler that ends the process at once, leaving
    # Ray's agents running. Ours unwinds through the ``finally`` below instead.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stop)
    try:
        serve.start(
            http_options={"host": options.http_host, "port": options.http_port},
            logging_config={"enable_access_log": False, "log_level": "WARNING"},
        )
        yield serve
    finally:
        with contextlib.suppress(Exception):  # Ray may already be half gone after a signal
            serve.shutdown()
        ray.shutdown()
        shutil.rmtree(haproxy_dir, ignore_errors=True)


def deploy(serve: ModuleType, config: ServeConfig, options: RayOptions) -> None:
    """Deploy the app and return once its replicas are running (they have loaded the model)."""
    serve.run(build_application(config, options), name=APP_NAME, route_prefix="/", blocking=False)


class StopServing(BaseException):
    """SIGTERM or SIGINT arrived: unwind, shutting Serve and Ray down on the way.

    A ``BaseException``, so that no ``except Exception`` in Ray's code swallows it.
    """


def _raise_stop(signum: int, _: object) -> None:
    raise StopServing(signum)


def serve_forever() -> None:
    """Block until a signal raises ``StopServing`` (the handlers ``ray_cluster`` installs)."""
    threading.Event().wait()


def run_ray_server(config: ServeConfig, options: RayOptions, admin_key: str | None = None) -> None:
    """``recdrill serve --backend ray``: deploy, then serve until SIGTERM or SIGINT, then tear down.

    Paths become absolute (replicas need not share this process's working directory), and only the
    admin key's hash travels to the replicas.
    """
    ensure_ray_installed()  # the one-line error before any setup
    config = dataclasses.replace(
        config,
        model_dir=config.model_dir.absolute(),
        state_dir=config.state_dir.absolute(),
        fallback_model_dir=config.fallback_model_dir.absolute() if config.fallback_model_dir else None,
        admin_key_sha256=ServeConfig.hash_key(admin_key) if admin_key else config.admin_key_sha256,
    )
    config.state_dir.mkdir(parents=True, exist_ok=True)
    # Replicas are Ray actors, not children of one uvicorn supervisor: without a shared id each would
    # be its own reload group and ignore the others' reloads (a drill found one replica still serving
    # a rolled-back model).
    os.environ.setdefault(ENV_SERVER_ID, f"ray-{os.getpid()}-{secrets.token_hex(4)}")
    with contextlib.suppress(StopServing), ray_cluster(config.state_dir, options) as serve:
        deploy(serve, config, options)
        serve_forever()
