"""The drill target of a Chaos Toolkit provider call, built from the experiment's plain arguments.

The admin key is never an argument: Chaos Toolkit copies every argument into its journal, so the
providers read it from the environment variable named by ``admin_key_env``.
"""

from __future__ import annotations

import os
from pathlib import Path

from recdrill.drills.target import DrillTarget
from recdrill.errors import ConfigError
from recdrill.security.tls import client_ssl_context

ADMIN_KEY_ENV = "RECDRILL_ADMIN_KEY"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def admin_key_from_env(admin_key_env: str, required: bool = True) -> str:
    """The key held by the environment variable ``admin_key_env`` ("" when it is unset and not required)."""
    if not admin_key_env or not isinstance(admin_key_env, str):
        raise ConfigError("admin_key_env must name an environment variable, e.g. RECDRILL_ADMIN_KEY")
    key = os.environ.get(admin_key_env, "")
    if required and not key:
        raise ConfigError(
            f"the environment variable {admin_key_env} holds no admin key: set it to the deployment's "
            "operator/admin key before running the experiment (the key is never an argument, since "
            "arguments are written to the journal)"
        )
    return key


def drill_target(
    base_url: str = DEFAULT_BASE_URL,
    admin_key_env: str = ADMIN_KEY_ENV,
    ca_bundle: str | None = None,
    state_dir: str | None = None,
    model_dir: str | None = None,
    server_pid: int | None = None,
    local: bool = False,
    scratch_dir: str | None = None,
    load_snapshot: bool = False,
    key_required: bool = True,
) -> DrillTarget:
    """A :class:`DrillTarget` from plain experiment arguments.

    ``server_pid`` names the supervisor of a local ``recdrill serve --workers N`` (for process faults);
    ``load_snapshot`` reads the shop snapshot from ``model_dir`` (for faults that need one). A drill
    started by Chaos Toolkit has no loopback proxy and no replay plan: faults that need those say so
    when injected.
    """
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
    key = admin_key_from_env(admin_key_env, required=key_required)
    workers = None
    if server_pid is not None:
        # Imported here: process faults pull in worker inspection that plain probes never need.
        from recdrill.drills.target import LocalServer

        if isinstance(server_pid, bool) or not isinstance(server_pid, int) or server_pid <= 0:
            raise ConfigError(f"server_pid must be a positive process id, got {server_pid!r}")
        workers = LocalServer(server_pid)
    snapshot = None
    if load_snapshot and model_dir is not None:
        from recdrill.data.snapshot import ShopSnapshot

        snapshot = ShopSnapshot.load(model_dir)
    return DrillTarget(
        base_url=base_url,
        admin_key=key,
        verify=client_ssl_context(ca_bundle),
        workers=workers,
        state_dir=None if state_dir is None else Path(state_dir),
        model_dir=None if model_dir is None else Path(model_dir),
        snapshot=snapshot,
        local=bool(local),
        scratch_dir=None if scratch_dir is None else Path(scratch_dir),
    )
