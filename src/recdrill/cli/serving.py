"""The ``serve`` command."""

from __future__ import annotations

import os
from pathlib import Path

import click

from recdrill._home import exposed_mode
from recdrill.cli.app import cli
from recdrill.data.snapshot import ShopSnapshot
from recdrill.models.factory import load_model
from recdrill.security.tls import validate_server_files
from recdrill.serving.config import ENV_ADMIN_KEY, ServeConfig, validate_signed_only
from recdrill.serving.feedback.crypto import load_user_id_sealer
from recdrill.serving.runtime.local_backend import ServerTls, run_server
from recdrill.serving.runtime.ray_backend import RayOptions, ensure_ray_installed, run_ray_server

# Named, not imported: the workers import them (the CLI wires areas, it does not load them).
MONITORS = ("recdrill.monitor.live:live_monitor", "recdrill.monitor.anomaly.watch:anomaly_watch")


@cli.command("serve")
@click.option(
    "--model",
    "model_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder written by 'recdrill train' (or give --registry-version).",
)
@click.option(
    "--registry-version",
    default=None,
    help="Serve this version from the registry (RECDRILL_HOME): verified, then decrypted into "
    "STATE_DIR/models/VERSION; a refused artifact stops the command.",
)
@click.option(
    "--require-signed",
    is_flag=True,
    default=False,
    help="Serve only registry versions that verify: needs --registry-version, refuses --model and "
    "--fallback-model folders, and every worker refuses a reload of a model_dir (422, reason "
    "'unsigned'); reloads by version are verified as always.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="uvicorn worker processes (each gets one BLAS thread when there are several).",
)
@click.option(
    "--state-dir",
    default=Path("recdrill-state"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Feedback log and fault table.",
)
@click.option(
    "--deadline-ms",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Per-request deadline for the primary tier before falling back.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: uvicorn workers; ray: Ray Serve replicas (pip install 'recdrill[ray]').",
)
@click.option("--min-replicas", default=1, show_default=True, type=click.IntRange(0), help="Ray only.")
@click.option("--max-replicas", default=2, show_default=True, type=click.IntRange(1), help="Ray only.")
@click.option(
    "--target-ongoing",
    default=4.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Ray only: ongoing requests per replica the autoscaler aims for.",
)
@click.option(
    "--max-queued",
    default=64,
    show_default=True,
    type=click.IntRange(-1),
    help="Ray only: requests waiting per replica before a 429 (-1: no limit).",
)
@click.option(
    "--cpus-per-replica",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Ray only: a fraction lets more replicas than cores be placed.",
)
@click.option(
    "--ray-ingress",
    type=click.Choice(["direct", "proxy"]),
    default="direct",
    show_default=True,
    help="direct: HAProxy to each replica's own HTTP server; proxy: Ray's Python HTTP proxy.",
)
@click.option(
    "--fallback-model",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Second-tier model folder (default: MODEL/fallback when it exists).",
)
@click.option(
    "--max-in-flight",
    default=16,
    show_default=True,
    type=click.IntRange(1),
    help="Recommend requests per worker before a fast 429.",
)
@click.option(
    "--admission-wait-ms",
    default=25.0,
    show_default=True,
    type=click.FloatRange(0),
    help="How long a request beyond --max-in-flight may wait for a slot before its 429.",
)
@click.option("--batching/--no-batching", default=True, show_default=True, help="Micro-batch model calls.")
@click.option("--batch-max", default=16, show_default=True, type=click.IntRange(1))
@click.option("--batch-wait-ms", default=1.0, show_default=True, type=click.FloatRange(min=0.0))
@click.option(
    "--cache-users", default=10_000, show_default=True, type=click.IntRange(1), help="Last-good cache size."
)
@click.option(
    "--cache-ttl-s", default=600.0, show_default=True, type=click.FloatRange(min=0.0, min_open=True)
)
@click.option(
    "--breaker-open-s",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="How long a tripped tier is skipped before probing.",
)
@click.option("--breaker-min-calls", default=20, show_default=True, type=click.IntRange(1))
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this PEM certificate (chain); needs --tls-key (see 'keys tls-selfsigned').",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The certificate's PEM private key (keep it mode 0600).",
)
@click.option(
    "--monitor/--no-monitor",
    default=True,
    show_default=True,
    help="Watch served traffic for drift against the training reference, and feedback for anomalies "
    "(quarantined out of 'feedback export'); /metrics: recdrill_drift_*, recdrill_anomalies_total.",
)
def serve_command(
    model_dir: Path | None,
    registry_version: str | None,
    require_signed: bool,
    host: str,
    port: int,
    workers: int,
    state_dir: Path,
    deadline_ms: float,
    backend: str,
    min_replicas: int,
    max_replicas: int,
    target_ongoing: float,
    max_queued: int,
    cpus_per_replica: float,
    ray_ingress: str,
    fallback_model: Path | None,
    max_in_flight: int,
    admission_wait_ms: float,
    batching: bool,
    batch_max: int,
    batch_wait_ms: float,
    cache_users: int,
    cache_ttl_s: float,
    breaker_open_s: float,
    breaker_min_calls: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    monitor: bool,
) -> None:
    """Serve recommendations over HTTP, or HTTPS with --tls-cert and --tls-key (admin key from the
    RECDRILL_ADMIN_KEY variable)."""
    tls = _check_tls(tls_cert, tls_key, backend)
    served = _model_to_serve(model_dir, registry_version, state_dir, require_signed, fallback_model)
    if backend == "ray":
        if workers != 1:
            raise click.UsageError("--workers is for --backend local; Ray scales with --max-replicas")
        ensure_ray_installed()  # the optional extra: say so before loading anything
    _load_once(served, fallback_model)
    admin_key = os.environ.get(ENV_ADMIN_KEY)
    if not admin_key:
        click.echo(f"warning: {ENV_ADMIN_KEY} is not set: admin endpoints will refuse every key", err=True)
    config = ServeConfig(
        model_dir=served,
        state_dir=state_dir,
        deadline_ms=deadline_ms,
        fallback_model_dir=fallback_model,
        max_in_flight=max_in_flight,
        admission_wait_ms=admission_wait_ms,
        batching=batching,
        batch_max=batch_max,
        batch_wait_ms=batch_wait_ms,
        cache_users=cache_users,
        cache_ttl_s=cache_ttl_s,
        breaker_open_s=breaker_open_s,
        breaker_min_calls=breaker_min_calls,
        model_version=registry_version,
        require_signed=require_signed,
        observers=MONITORS if monitor else (),
    )
    if backend == "ray":
        ray_options = RayOptions(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            target_ongoing_requests=target_ongoing,
            max_queued_requests=max_queued,
            cpus_per_replica=cpus_per_replica,
            http_host=host,
            http_port=port,
            ingress="proxy" if ray_ingress == "proxy" else "direct",
        )
        ray_options.ray_temp_dir(state_dir)  # a path too long for Ray's sockets fails here
        click.echo(f"serving {served} on Ray Serve at http://{host}:{port}", err=True)
        run_ray_server(config, ray_options, admin_key)
        return
    scheme = "https" if tls else "http"
    click.echo(f"serving {served} on {scheme}://{host}:{port} with {workers} worker(s)", err=True)
    run_server(config, host, port, workers, admin_key, tls=tls)


def _model_to_serve(
    model_dir: Path | None,
    registry_version: str | None,
    state_dir: Path,
    require_signed: bool,
    fallback_model: Path | None,
) -> Path:
    """The folder to serve: ``--model``, or ``--registry-version`` verified and decrypted into the
    state folder (refused, with its reason, before any worker starts). With ``--require-signed``
    only the latter, and no ``--fallback-model`` (one line, exit 2, before anything is decrypted)."""
    if require_signed:
        validate_signed_only(registry_version, fallback_model)
    if registry_version is not None and model_dir is None:
        from recdrill.serving.registry_source import materialise_version  # loads the signing library

        return materialise_version(registry_version, state_dir)
    if model_dir is None or registry_version is not None:
        raise click.UsageError("give exactly one of --model and --registry-version")
    return model_dir


def _load_once(model_dir: Path, fallback_model: Path | None) -> None:
    """Load what the workers will load, so a broken model, snapshot or key fails here with one clear
    line rather than with a traceback in every worker."""
    load_model(model_dir)
    ShopSnapshot.load(model_dir)
    if fallback_model is not None or (model_dir / "fallback").is_dir():
        load_model(fallback_model or model_dir / "fallback")
    load_user_id_sealer()  # no data key and no opt-out: one clear line now, not one per worker


def _check_tls(cert: Path | None, key: Path | None, backend: str) -> ServerTls | None:
    """Both files or neither; loadable as a pair and unexpired (one line now, not a traceback in
    every worker); and the local backend, because Ray Serve terminates TLS in its own proxy."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise click.UsageError("--tls-cert and --tls-key go together: give both or neither")
    if backend == "ray":
        raise click.UsageError(
            "--tls-cert/--tls-key are for --backend local: Ray Serve terminates TLS in its own proxy, "
            "which recdrill does not configure; put a TLS proxy in front of it instead"
        )
    validate_server_files(cert, key)
    if exposed_mode(key) is not None:
        click.echo(f"warning: {key} is readable by group or others; chmod 600 it", err=True)
    return ServerTls(cert, key)
