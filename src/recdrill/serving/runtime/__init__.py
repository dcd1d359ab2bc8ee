"""How the app runs: the local backend (uvicorn, one worker or several), the Ray Serve backend, and each
as a child process on a free loopback port for tests, drills and the demo. Imported on first use
(PEP 562): Ray loads only for the Ray backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recdrill._lazy import lazy_getattr

_EXPORTS = {
    "ServerTls": "local_backend",
    "run_server": "local_backend",
    "ServerProcess": "local_process",
    "RayOptions": "ray_backend",
    "ensure_ray_installed": "ray_backend",
    "run_ray_server": "ray_backend",
    "RayServerProcess": "ray_process",
    "ChildServer": "child",
    "free_port": "child",
}

__all__ = [
    "ChildServer",
    "RayOptions",
    "RayServerProcess",
    "ServerProcess",
    "ServerTls",
    "ensure_ray_installed",
    "free_port",
    "run_ray_server",
    "run_server",
]

if TYPE_CHECKING:
    from recdrill.serving.runtime.child import ChildServer, free_port
    from recdrill.serving.runtime.local_backend import ServerTls, run_server
    from recdrill.serving.runtime.local_process import ServerProcess
    from recdrill.serving.runtime.ray_backend import RayOptions, ensure_ray_installed, run_ray_server
    from recdrill.serving.runtime.ray_process import RayServerProcess


__getattr__ = lazy_getattr("recdrill.serving.runtime", _EXPORTS, globals())
