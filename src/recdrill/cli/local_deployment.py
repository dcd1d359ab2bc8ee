"""A shop, a trained model and a server on this machine: what ``demo`` and ``drill run`` without
``--target`` drill against."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from recdrill.cli.common import load_data
from recdrill.data.snapshot import ShopSnapshot
from recdrill.data.splits import Split, leave_one_out
from recdrill.drills.replayer import ReplayPlan
from recdrill.drills.target import DrillTarget
from recdrill.eval.evaluate import evaluate, format_table
from recdrill.models.factory import make_model
from recdrill.security.keystore import served_key_store_path
from recdrill.security.tls import client_ssl_context, make_dev_certificate
from recdrill.serving.runtime.local_process import ServerProcess
from recdrill.serving.runtime.ray_backend import RayOptions
from recdrill.serving.runtime.ray_process import RayServerProcess


@dataclass
class LocalDeployment:
    """A running local deployment and what a drill may reach of it."""

    split: Split
    model_dir: Path
    state_dir: Path
    snapshot: ShopSnapshot
    server: ServerProcess | RayServerProcess
    admin_key: str

    @classmethod
    @contextmanager
    def start(
        cls,
        data_spec: str,
        seed: int,
        out: Path,
        *,
        workers: int = 2,
        backend: str = "local",
        tls: bool = False,
    ) -> Iterator[LocalDeployment]:
        """Build the shop, train the item-to-item model, serve it; stop the server on exit."""
        click.echo("[1/4] building the shop", err=True)
        split = leave_one_out(load_data(data_spec, None, seed))
        click.echo("[2/4] training the item-to-item model and the popularity baseline", err=True)
        fit_data = split.test.fit_data
        model = make_model("itemknn").fit(fit_data)
        model_dir = out / "model"
        model.save(model_dir)
        snapshot = ShopSnapshot.from_dataset(fit_data)
        snapshot.save(model_dir)
        offline = [
            evaluate(m, split.test, model_name=m.kind) for m in (model, make_model("pop").fit(fit_data))
        ]
        click.echo(format_table(offline), err=True)
        click.echo("[3/4] starting the server", err=True)
        admin_key = secrets.token_urlsafe(24)  # lives only in this process and the server's environment
        state_dir = out / "state"
        server: ServerProcess | RayServerProcess
        if backend == "ray":
            # As many replicas as local workers: a drill that kills one needs another to serve meanwhile.
            replicas = RayOptions(min_replicas=workers, max_replicas=max(workers, RayOptions().max_replicas))
            server = RayServerProcess(model_dir, state_dir, replicas, admin_key=admin_key)
        elif tls:
            cert = make_dev_certificate(out / "tls", overwrite=True)  # the run's own, remade each time
            server = ServerProcess(
                model_dir,
                state_dir,
                workers=workers,
                admin_key=admin_key,
                tls_cert=cert.cert,
                tls_key=cert.key,
                ca_bundle=cert.ca_cert,
            )
        else:
            server = ServerProcess(model_dir, state_dir, workers=workers, admin_key=admin_key)
        with server as running:
            click.echo(f"  serving on {running.url} (pid {running.pid})", err=True)
            if isinstance(running, RayServerProcess):
                _wait_for_replicas(running, workers)
            yield cls(split, model_dir, state_dir, snapshot, running, admin_key)

    def target(self, out: Path) -> DrillTarget:
        """Everything of this deployment a fault may need."""
        return DrillTarget(
            self.server.url,
            self.admin_key,
            verify=self.server.verify if isinstance(self.server, ServerProcess) else client_ssl_context(),
            plan=ReplayPlan.from_fold(self.split.test),
            workers=self.server,  # uvicorn workers, or Ray Serve replicas
            state_dir=self.state_dir,
            model_dir=self.model_dir,
            snapshot=self.snapshot,
            local=True,
            scratch_dir=out / "scratch",
            # Shoppers carry no key where the server has no key store (the drill's own admin key has
            # a rate limit that a 5x surge of many users would hit as if it were one caller).
            anonymous_traffic=served_key_store_path() is None,
        )


def _wait_for_replicas(server: RayServerProcess, wanted: int, timeout_s: float = 120.0) -> None:
    """Ray Serve answers once one replica is up and starts the others behind it; a drill that kills
    one needs them all."""
    deadline = time.monotonic() + timeout_s
    while len(server.worker_pids()) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    click.echo(f"  {len(server.worker_pids())} Ray Serve replica(s) running", err=True)
