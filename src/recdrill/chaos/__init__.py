"""Chaos Toolkit interop: recdrill's fault catalogue and health checks as Chaos Toolkit providers.

``recdrill.chaos.actions`` injects and reverts catalogue faults; ``recdrill.chaos.probes`` measures
a deployment (availability, p99 latency, tier mix, faults left active, served model version). All of
them are plain functions with JSON-friendly arguments and results, so an experiment calls them as
``python`` providers and ``chaos run`` drives a recdrill drill::

    {"type": "action", "name": "slow ranker",
     "provider": {"type": "python", "module": "recdrill.chaos.actions", "func": "inject_fault",
                  "arguments": {"name": "ranker-latency", "params": {"latency_ms": 300},
                                "base_url": "http://127.0.0.1:8000", "fault_id": "slow-ranker"}}}

The admin key is never an argument: Chaos Toolkit copies every argument into its journal, so the
functions read the key from the environment variable named by ``admin_key_env``
(``RECDRILL_ADMIN_KEY`` unless told otherwise). ``examples/chaos/slow-ranker.json`` is a whole
experiment; ``recdrill.chaos.journal`` turns a recdrill drill journal into Chaos Toolkit's shape.
"""

from recdrill.chaos.target import ADMIN_KEY_ENV, DEFAULT_BASE_URL, admin_key_from_env, drill_target

__all__ = ["ADMIN_KEY_ENV", "DEFAULT_BASE_URL", "admin_key_from_env", "drill_target"]
