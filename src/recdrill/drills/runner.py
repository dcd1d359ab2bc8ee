"""Run a drill: replay traffic, inject and revert faults on schedule, judge, and write a journal.

The runner talks to a deployment through its HTTP API, so it runs the same against a local
server or anything else that serves recdrill's API. Faults are injected with a TTL a little longer
than their step, removed on schedule, and removed again on every exit path (errors and Ctrl-C
included); afterwards the runner checks that the deployment holds no active fault.

Process faults (kill or pause a worker) act on local processes instead, so they need ``workers``
(something that lists the target's worker pids); a paused worker is continued on schedule and on
every exit path, and afterwards the runner checks that no worker is left stopped. Traffic retries
a failed request once when the scenario allows it; the journal reports availability on first try
and after the retry separately.

An https target is verified against ``verify`` (the system store unless the caller built a context
from a CA bundle); before any traffic the runner checks that it can reach and trust the target, so
an untrusted certificate stops the drill with one line rather than a run of failed requests.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from recdrill.drills import process_faults
from recdrill.drills.process_faults import ProcessFaultError, WorkerSource
from recdrill.drills.replayer import Replayer, ReplayPlan, RequestRecord
from recdrill.drills.scenario import FaultStep, Scenario
from recdrill.drills.timeline import Records, check, first_second, per_second, window_stats
from recdrill.errors import RecdrillError
from recdrill.security.tls import client_ssl_context, is_verification_failure
from recdrill.serving.workers import WorkerRef

log = logging.getLogger(__name__)
ADMIN_KEY_HEADER = "X-API-Key"
TTL_MARGIN_S = 5.0  # a fault outlives its step by this much only if the runner cannot remove it


class DrillError(RecdrillError):
    """The drill could not run: the target refused a fault, or was not there."""


@dataclass
class _InjectedFault:
    step: FaultStep
    fault_id: str | None = None
    injected_at_s: float | None = None
    reverted_at_s: float | None = None
    revert_error: str | None = None
    worker: WorkerRef | None = None  # process faults: the worker signalled
    workers_before: list[int] = field(default_factory=list)
    replacement_pid: int | None = None
    replaced_at_s: float | None = None
    revert_note: str | None = None


@dataclass
class DrillRunner:
    """Runs one :class:`Scenario` against ``base_url`` with an operator/admin key.

    ``progress`` receives short human-readable lines while the drill runs; ``workers`` lists the
    target's worker pids, for process faults (``ServerProcess``, or ``LocalServer(pid)``).
    """

    scenario: Scenario
    base_url: str
    admin_key: str
    plan: ReplayPlan
    progress: Callable[[str], None] = field(default=lambda _: None)
    verify: ssl.SSLContext = field(default_factory=client_ssl_context)
    workers: WorkerSource | None = None
    journal: dict[str, Any] | None = field(default=None, init=False)
    _watchers: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def run(self) -> dict[str, Any]:
        """Run the drill to the end (or until interrupted) and return its journal."""
        self._check_process_target()
        injected = [_InjectedFault(step) for step in self.scenario.faults]
        started_at = datetime.now(UTC)
        status = "completed"
        traffic = self.scenario.traffic
        replayer = Replayer(
            self.base_url,
            self.plan,
            k=traffic.k,
            timeout_s=traffic.timeout_s,
            verify=self.verify,
            retry=traffic.retry,
            api_key=self.admin_key,
        )
        try:
            asyncio.run(self._run(replayer, injected))
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception:
            status = "failed"
            raise
        finally:
            # Backstop for every exit path: whatever is still injected is removed synchronously.
            self._revert_all_sync(injected)
            self.journal = self._journal(replayer.records, injected, started_at, status)
        return self.journal

    def _check_process_target(self) -> None:
        if any(step.is_process_fault for step in self.scenario.faults):
            try:
                process_faults.check_workers(self._worker_source())
            except ProcessFaultError as exc:
                raise DrillError(str(exc)) from exc

    def _worker_source(self) -> WorkerSource:
        if self.workers is None:
            raise DrillError(
                "the scenario has process faults (kill, pause): the drill needs the server's pid "
                "(recdrill drill --server-pid PID) to find its workers"
            )
        return self.workers

    async def _run(self, replayer: Replayer, injected: list[_InjectedFault]) -> None:
        traffic = self.scenario.traffic
        async with self._admin_client() as admin:
            await self._check_target(admin)
            await replayer.warm_up(traffic.warmup_requests)
            t0 = time.monotonic()
            schedule = asyncio.create_task(self._fault_schedule(admin, injected, t0))
            ticker = asyncio.create_task(self._progress_ticker(replayer, t0))
            try:
                await replayer.run(traffic.rate, traffic.duration_s, traffic.seed, started=t0)
                await schedule
            finally:
                ticker.cancel()
                for watcher in self._watchers:
                    watcher.cancel()
                if not schedule.done():
                    schedule.cancel()
                for fault in injected:  # on the async path first, while the client is open
                    await self._revert(admin, fault, t0)

    async def _check_target(self, admin: httpx.AsyncClient) -> None:
        """Any answer from ``/readyz`` will do; no connection (or an untrusted certificate) stops here."""
        try:
            await admin.get("/readyz")
        except httpx.HTTPError as exc:
            hint = ""
            if is_verification_failure(exc):
                hint = " (its certificate is not trusted: give the CA bundle that signed it, --ca-bundle)"
            raise DrillError(f"cannot reach the target {self.base_url}: {exc}{hint}") from exc

    def _admin_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._admin_options())

    def _admin_options(self) -> dict[str, Any]:
        headers = {ADMIN_KEY_HEADER: self.admin_key}
        return {"base_url": self.base_url, "headers": headers, "timeout": 5.0, "verify": self.verify}

    async def _fault_schedule(
        self, admin: httpx.AsyncClient, injected: list[_InjectedFault], t0: float
    ) -> None:
        events = sorted(
            [(f.step.at_s, 1, f) for f in injected] + [(f.step.end_s, 0, f) for f in injected],
            key=lambda e: (e[0], e[1]),
        )
        for at_s, is_start, fault in events:
            delay = t0 + at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if is_start:
                await self._inject(admin, fault, t0)
            else:
                await self._revert(admin, fault, t0)

    async def _inject(self, admin: httpx.AsyncClient, fault: _InjectedFault, t0: float) -> None:
        step = fault.step
        if step.is_process_fault:
            await self._inject_process(fault, t0)
            return
        body = {
            "point": step.point,
            "kind": step.kind,
            "latency_ms": step.latency_ms,
            "rate": step.rate,
            "ttl_s": step.duration_s + TTL_MARGIN_S,
        }
        response = await admin.post("/admin/faults", json=body)
        if response.status_code != 201:
            raise DrillError(
                f"target refused fault {step.name!r}: HTTP {response.status_code} {response.text[:200]}"
            )
        fault.fault_id = str(response.json()["id"])
        fault.injected_at_s = time.monotonic() - t0
        self.progress(f"t={fault.injected_at_s:5.1f}s  inject {step.name} ({step.kind})")

    async def _inject_process(self, fault: _InjectedFault, t0: float) -> None:
        workers = self._worker_source()
        kind: process_faults.ProcessFaultKind = "kill" if fault.step.kind == "kill" else "pause"
        fault.workers_before = workers.worker_pids()
        try:
            fault.worker = process_faults.inject(workers, kind, fault.step.worker)
        except ProcessFaultError as exc:
            raise DrillError(f"could not inject fault {fault.step.name!r}: {exc}") from exc
        fault.injected_at_s = time.monotonic() - t0
        self.progress(f"t={fault.injected_at_s:5.1f}s  {fault.step.kind} worker {fault.worker.pid}")
        if kind == "kill":  # nothing to revert; watch for the supervisor's replacement instead
            fault.reverted_at_s = fault.injected_at_s
            fault.revert_note = process_faults.revert(kind, fault.worker)
            watch = self._watch_replacement(fault, workers, fault.worker.pid, t0)
            self._watchers.append(asyncio.create_task(watch))

    async def _watch_replacement(
        self, fault: _InjectedFault, workers: WorkerSource, killed: int, t0: float
    ) -> None:
        while fault.replacement_pid is None:
            await asyncio.sleep(0.05)
            fault.replacement_pid = process_faults.replacement(workers, killed, fault.workers_before)
        fault.replaced_at_s = time.monotonic() - t0
        self.progress(
            f"t={fault.replaced_at_s:5.1f}s  worker {fault.replacement_pid} replaced the killed one"
        )

    def _revert_process(self, fault: _InjectedFault, t0: float | None) -> None:
        if fault.worker is None or fault.reverted_at_s is not None:
            return
        fault.revert_note = process_faults.revert("pause", fault.worker)
        fault.reverted_at_s = fault.step.end_s if t0 is None else time.monotonic() - t0
        self.progress(f"t={fault.reverted_at_s:5.1f}s  revert {fault.step.name} ({fault.revert_note})")

    async def _revert(self, admin: httpx.AsyncClient, fault: _InjectedFault, t0: float) -> None:
        if fault.step.is_process_fault:
            self._revert_process(fault, t0)
            return
        if fault.fault_id is None or fault.reverted_at_s is not None:
            return
        try:
            response = await admin.delete(f"/admin/faults/{fault.fault_id}")
        except httpx.HTTPError as exc:
            fault.revert_error = f"{type(exc).__name__}: {exc}"
            return
        if response.status_code in (200, 404):  # 404: already gone (expired), which is reverted too
            fault.reverted_at_s = time.monotonic() - t0
            fault.revert_error = None
            self.progress(f"t={fault.reverted_at_s:5.1f}s  revert {fault.step.name}")
        else:
            fault.revert_error = f"HTTP {response.status_code}"

    def _revert_all_sync(self, injected: list[_InjectedFault]) -> None:
        for fault in injected:
            if fault.step.is_process_fault:
                self._revert_process(fault, None)
        pending = [f for f in injected if f.fault_id is not None and f.reverted_at_s is None]
        if not pending:
            return
        with httpx.Client(**self._admin_options()) as admin:
            for fault in pending:
                try:
                    code = admin.delete(f"/admin/faults/{fault.fault_id}").status_code
                    if code in (200, 404):
                        fault.reverted_at_s = (
                            fault.step.end_s if fault.reverted_at_s is None else fault.reverted_at_s
                        )
                        fault.revert_error = None
                except httpx.HTTPError as exc:
                    fault.revert_error = f"{type(exc).__name__}: {exc}"
                    log.error("could not revert fault %s: %s (its TTL will remove it)", fault.fault_id, exc)

    async def _progress_ticker(self, replayer: Replayer, t0: float) -> None:
        while True:
            await asyncio.sleep(5.0)
            done = replayer.records
            recent = [r for r in done if r.scheduled_s >= time.monotonic() - t0 - 5.0]
            ok = sum(r.ok for r in recent)
            served = sum(1 for r in recent if r.served_by == self.scenario.primary_tier)
            self.progress(
                f"t={time.monotonic() - t0:5.1f}s  {len(done)} requests; last 5 s: {ok}/{len(recent)} ok, "
                f"{served} by {self.scenario.primary_tier}"
            )

    def _active_faults(self) -> list[dict[str, Any]] | None:
        try:
            with httpx.Client(**self._admin_options()) as admin:
                response = admin.get("/admin/faults")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            active: list[dict[str, Any]] = response.json()
        except ValueError:
            return None
        return active

    def _journal(
        self, records: list[RequestRecord], injected: list[_InjectedFault], started_at: datetime, status: str
    ) -> dict[str, Any]:
        scenario = self.scenario
        duration = scenario.traffic.duration_s
        table = Records.from_records(records)
        baseline = window_stats(table, 0.0, scenario.baseline_s, scenario.primary_tier)
        base_ndcg = baseline.ndcg10
        before = check(scenario.hypotheses, baseline, base_ndcg)
        after_stats = window_stats(table, duration - scenario.after_s, duration, scenario.primary_tier)
        after = check(scenario.hypotheses, after_stats, base_ndcg)
        rows = per_second(
            table, duration, scenario.hypotheses, scenario.window_s, scenario.primary_tier, base_ndcg
        )
        during_rows = [r for r in rows if r["t"] >= scenario.baseline_s]
        deviations = [
            {"t": r["t"], "hypotheses": r["deviating"]} for r in during_rows if not r["hypotheses_ok"]
        ]
        faults = _fault_verdicts(injected, rows, table, scenario)
        active = self._active_faults()
        stopped = None if self.workers is None else process_faults.stopped_workers(self.workers)
        cleanliness = {
            "active_faults": None if active is None else len(active),
            "stopped_workers": stopped,
            "all_reverted": all(f["reverted"] for f in faults),
            "ok": active == [] and not stopped and all(f["reverted"] for f in faults),
        }
        overall = window_stats(table, 0.0, duration, scenario.primary_tier)
        deviated = (not all(h["ok"] for h in before)) or bool(deviations) or not all(h["ok"] for h in after)
        return {
            "scenario": scenario.model_dump(),
            "target": self.base_url,
            "start": started_at.isoformat(),
            "end": datetime.now(UTC).isoformat(),
            "status": status,
            "deviated": deviated,
            "baseline": {"ndcg10": base_ndcg, "p99_ms": baseline.p99_ms, "requests": baseline.requests},
            "steady_states": {
                "before": {
                    "ok": all(h["ok"] for h in before),
                    "window": [0.0, scenario.baseline_s],
                    "hypotheses": before,
                },
                "during": {"ok": not deviations, "deviations": deviations},
                "after": {
                    "ok": all(h["ok"] for h in after),
                    "window": [duration - scenario.after_s, duration],
                    "hypotheses": after,
                },
            },
            "faults": faults,
            "summary": {
                "requests": overall.requests,
                "availability": overall.availability,
                "availability_first_try": overall.availability_first_try,
                "failed_first_try": int((~table.ok_first_try).sum()),
                "failed_after_retry": int((~table.ok).sum()),
                "retried": overall.retried,
                "p50_ms": overall.p50_ms,
                "p95_ms": _percentile(table, 95),
                "p99_ms": overall.p99_ms,
                "ndcg10": overall.ndcg10,
                "fallback_share": overall.fallback_share,
                "served_by": overall.served_by,
            },
            "cleanliness": cleanliness,
            "timeline": rows,
        }


def _percentile(table: Records, q: float) -> float | None:
    return float(np.percentile(table.latency_ms, q)) if len(table.latency_ms) else None


def _fault_verdicts(
    injected: list[_InjectedFault], rows: list[dict[str, Any]], table: Records, scenario: Scenario
) -> list[dict[str, Any]]:
    starts = sorted(f.step.at_s for f in injected)
    verdicts = []
    for fault in injected:
        step = fault.step
        horizon = min([s for s in starts if s > step.at_s] + [scenario.traffic.duration_s])
        deviation = first_second(rows, step.at_s, horizon, ok=False)
        recovery = first_second(rows, step.end_s, horizon, ok=True) if deviation is not None else None
        in_reach = (table.scheduled_s >= step.at_s) & (table.scheduled_s < horizon)
        fallback = in_reach & table.ok & (table.served_by != scenario.primary_tier)
        first_fallback = table.scheduled_s[fallback]
        verdicts.append(
            {
                "name": step.name,
                "point": step.point,
                "kind": step.kind,
                "params": {"latency_ms": step.latency_ms, "rate": step.rate},
                "start": step.at_s,
                "end": step.end_s,
                "injected_at": fault.injected_at_s,
                "reverted_at": fault.reverted_at_s,
                "reverted": fault.reverted_at_s is not None,
                "revert_error": fault.revert_error,
                # The window that first shows (or clears) a deviation closes one second after its row.
                "detect_s": None if deviation is None else deviation + 1 - step.at_s,
                "failover_s": float(first_fallback[0] - step.at_s) if len(first_fallback) else None,
                "recover_s": None if recovery is None else max(0.0, recovery + 1 - step.end_s),
                "worker": _worker_verdict(fault),
            }
        )
    return verdicts


def _worker_verdict(fault: _InjectedFault) -> dict[str, Any] | None:
    """What a process fault did: the worker, its replacement (kills) and how the revert went."""
    if fault.worker is None:
        return None
    replaced_s = None
    if fault.replaced_at_s is not None and fault.injected_at_s is not None:
        replaced_s = fault.replaced_at_s - fault.injected_at_s
    return {
        "pid": fault.worker.pid,
        "replacement_pid": fault.replacement_pid,
        "replaced_s": replaced_s,
        "revert": fault.revert_note,
    }
