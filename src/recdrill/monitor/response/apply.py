"""Carry out a drift response's decision through the registry, and keep a record of every decision.

Every candidate is pushed (stage ``candidate``, its held-out figures as the version's metrics and
the whole decision signed inside the artifact as ``response.json``), so a kept candidate can still be
inspected. Then:

- ``promote`` with a server: ``POST /admin/models/canary`` starts it as a canary for
  ``canary_percent`` of users, as ``recdrill registry promote --canary`` does; the server's judge
  rolls it back or (with ``auto_promote``) makes it production. The server must use this registry.
- ``promote`` without a server: ``Registry.promote`` to production, the reason in its history.
- ``keep``: the candidate is archived with the reason; production does not change.

Each decision, applied or not, is appended as one JSON line to ``<registry home>/responses.jsonl``:
what triggered it, on what data, both models' figures, the outcome and when.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from recdrill.monitor.response.responder import ResponseDecision
from recdrill.registry.registry import Registry
from recdrill.registry.stages import Stage
from recdrill.serving.admin_client import admin_request

RESPONSES_FILE = "responses.jsonl"
CANARY_PATH = "/admin/models/canary"


def apply(
    decision: ResponseDecision,
    registry: Registry,
    server_url: str | None = None,
    admin_key: str | None = None,
    *,
    ca_bundle: str | Path | None = None,
) -> ResponseDecision:
    """Push the candidate, start its canary or promote it (``promote`` only), and record the decision.

    Returns:
        The decision with ``candidate_version`` and ``applied`` filled in, as recorded.

    Raises:
        RegistryError: the push or the promotion failed (the failure is recorded first).
        RecdrillError: the server refused the canary (recorded first; the candidate stays a candidate).
    """
    applied = decision
    try:
        if decision.candidate_path is None:
            applied = dataclasses.replace(decision, applied="nothing to push: no candidate was trained")
            return applied
        metrics = {f"heldout_{k}": v for k, v in decision.candidate.items()}
        metrics.update({f"current_heldout_{k}": v for k, v in decision.current.items()})
        record = registry.push(decision.candidate_path, parent=decision.current_version, metrics=metrics)
        version = record.version
        applied = dataclasses.replace(decision, candidate_version=version, applied="pushed")
        reason = f"auto-response: {decision.reason}"
        if decision.decision == "keep":
            registry.archive(version, reason[:500])
            applied = dataclasses.replace(applied, applied="archived: kept the current model")
        elif server_url is not None:
            policy = decision.policy
            body = {
                "version": version,
                "share": float(policy["canary_percent"]) / 100.0,
                "mode": "canary",
                "auto_promote": bool(policy["auto_promote"]),
            }
            admin_request("POST", server_url, CANARY_PATH, body, admin_key=admin_key, ca_bundle=ca_bundle)
            applied = dataclasses.replace(
                applied, applied=f"canary for {policy['canary_percent']}% of users on {server_url}"
            )
        else:
            registry.promote(version, Stage.PRODUCTION, reason[:500])
            applied = dataclasses.replace(applied, applied="production")
        return applied
    except Exception as exc:
        applied = dataclasses.replace(applied, applied=f"failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        record_decision(registry.home, applied)


def record_decision(home: Path, decision: ResponseDecision) -> Path:
    """Append ``decision`` as one JSON line to ``home/responses.jsonl`` (flushed to disk); its path."""
    path = Path(home) / RESPONSES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(decision.to_dict(), sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def read_decisions(home: Path) -> list[dict[str, object]]:
    """Every recorded decision, oldest first (empty when none was recorded)."""
    path = Path(home) / RESPONSES_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
