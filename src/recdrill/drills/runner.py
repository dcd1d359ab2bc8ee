"""Run a drill: replay traffic, inject and revert catalogue faults on schedule, judge, and always
leave the target clean.

The runner acts on a :class:`~recdrill.drills.target.DrillTarget`: judged traffic and audited
feedback go to its ``traffic_url`` (through a loopback proxy when a network fault is scheduled),
faults act through their catalogue functions (``recdrill drill list``), and the deployment's own
``/metrics`` are polled for alert signals. Every exit path (the end, an abort condition, an error,
Ctrl-C) reverts what is still injected, runs the scenario's rollbacks and checks cleanliness before
the journal is written; server-side faults also carry a TTL, in case the runner itself dies.

Every drill ends. Besides its abort conditions, a drill aborts (through the same path: traffic
stopped, faults reverted, rollbacks run, journal marked ``aborted`` with the reason) when its
deadline passes (``Scenario.deadline_s`` after ``run`` began, on the runner's ``clock``) or when
its :class:`~recdrill.drills.stop.StopSwitch` is tripped (the CLI trips it on SIGTERM and SIGINT).
Traffic that the drill's own process is too short of CPU to send on time is skipped and counted
(:mod:`recdrill.drills.pacing`), so a loaded host degrades the drill instead of stalling it.

An https target is verified against the target's ``verify`` context; before any traffic the
runner checks that it can reach and trust the target, so an untrusted certificate stops the drill
with one line rather than a run of failed requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from recdrill.contract import API_KEY_HEADER
from recdrill.drills.alerts import AlertWatcher
from recdrill.drills.cleanliness import TargetSnapshot, cleanliness_report, run_rollback
from recdrill.drills.faults.catalogue import fault_type
from recdrill.drills.feedback_audit import FeedbackAudit
from recdrill.drills.journal import build_journal
from recdrill.drills.pacing import in_flight_limit
from recdrill.drills.replayer import Replayer, ReplayPlan, shaped_arrival_times
from recdrill.drills.scenario import Scenario
from recdrill.drills.stop import StopSwitch
from recdrill.drills.target import DrillTarget
from recdrill.drills.timeline import RequestTable, window_stats
from recdrill.drills.verdicts import StepRun
from recdrill.errors import DrillAborted, DrillError, RecdrillError
from recdrill.security.tls import is_verification_failure

log = logging.getLogger(__name__)
TTL_MARGIN_S = 5.0  # a server-held fault outlives its step by this much only if the runner cannot remove it
STOP_POLL_S = 0.2  # how often the runner looks at its deadline and its stop switch


@dataclass
class DrillRunner:
    """Runs one :class:`Scenario` against ``target``.

    ``progress`` receives short human-readable lines while the drill runs. ``stop`` is the switch
    that asks the drill to abort from outside (a signal handler trips it); ``clock`` is the
    deadline's (``time.monotonic`` unless a test injects one).
    """

    scenario: Scenario
    target: DrillTarget
    progress: Callable[[str], None] = field(default=lambda _: None)
    stop: StopSwitch = field(default_factory=StopSwitch)
    clock: Callable[[], float] = field(default=time.monotonic)
    journal: dict[str, Any] | None = field(default=None, init=False)
    aborted: dict[str, Any] | None = field(default=None, init=False)
    _own_proxy: bool = field(default=False, init=False, repr=False)
    _traffic_start: datetime | None = field(default=None, init=False, repr=False)
    _t0: float | None = field(default=None, init=False, repr=False)
    _deadline: float = field(default=float("inf"), init=False, repr=False)

    def run(self) -> dict[str, Any]:
        """Run the drill to the end (or until aborted or interrupted) and return its journal."""
        self.stop.arm()
        try:
            self._deadline = self.clock() + self.scenario.deadline_s
            return self._run_to_journal()
        finally:
            self.stop.disarm()

    def _run_to_journal(self) -> dict[str, Any]:
        runs = self._prepare()
        if self.target.plan is None:
            raise DrillError("a drill needs a replay plan (the data the served model was trained on)")
        before = TargetSnapshot.of(self.target)
        started_at = datetime.now(UTC)
        status = "completed"
        traffic = self.scenario.traffic
        replayer = self._replayer(self.target.plan)
        audit = FeedbackAudit(
            self.target.plan, traffic.feedback_rate, traffic.seed, timeout_s=traffic.timeout_s
        )
        watcher = AlertWatcher()
        rollbacks: list[dict[str, Any]] = []
        try:
            asyncio.run(self._run(replayer, runs, audit, watcher))
        except DrillAborted:
            status = "aborted"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception:
            status = "failed"
            raise
        finally:
            # Every exit path: revert, roll back, audit, check, then write the journal.
            self._revert_all(runs)
            for rollback in self.scenario.rollbacks:
                rollbacks.append(run_rollback(self.target, rollback.action, before))
            self._stop_proxy()
            with self.target.admin() as admin:
                audit.verify(admin)
            cleanliness = cleanliness_report(self.target, before, all(not r.needs_revert for r in runs))
            self.journal = build_journal(
                self.scenario,
                self.target.base_url,
                RequestTable.from_records(replayer.records),
                runs,
                watcher,
                audit,
                started_at,
                status,
                rollbacks,
                cleanliness,
                self.aborted,
                self._traffic_start,
                replayer.skipped,
            )
        return self.journal

    def _replayer(self, plan: ReplayPlan) -> Replayer:
        traffic = self.scenario.traffic
        return Replayer(
            self.target.traffic_url,
            plan,
            k=traffic.k,
            timeout_s=traffic.timeout_s,
            # in flight at most what a slow server alone cannot reach: each request ends by its timeouts
            max_connections=in_flight_limit(traffic.peak_rate, traffic.timeout_s, 2 if traffic.retry else 1),
            verify=self.target.verify,
            retry=traffic.retry,
            api_key=self.target.traffic_headers.get(API_KEY_HEADER),
            slack_s=traffic.send_slack_s,
        )

    def _prepare(self) -> list[StepRun]:
        """Parse every step's parameters and check the target has what each fault needs, before
        anything is injected; start the loopback proxy if a network fault is scheduled."""
        runs = []
        defaults = {"base_rate": self.scenario.traffic.rate}
        for step in self.scenario.faults:
            ftype = fault_type(step.fault)
            params = step.parsed_params({**defaults, "ttl_s": step.duration_s + TTL_MARGIN_S})
            runs.append(StepRun(step, ftype, params))
        if any("proxy" in r.ftype.needs for r in runs) and self.target.proxy is None:
            from recdrill.drills.faults.proxy import LoopbackProxy  # only drills with network faults need it

            self.target.proxy = LoopbackProxy(self.target.base_url)
            self.target.proxy.start()
            self._own_proxy = True
        for run in runs:
            try:
                self.target.require(run.step.fault, *sorted(run.ftype.needs))
                if run.ftype.preflight is not None:
                    run.ftype.preflight(self.target, run.params)
            except RecdrillError as exc:
                self._stop_proxy()
                raise DrillError(f"fault step {run.step.name!r} cannot run here: {exc}") from exc
        return runs

    def _stop_proxy(self) -> None:
        if self._own_proxy and self.target.proxy is not None:
            self.target.proxy.stop()
            self.target.proxy = None
            self._own_proxy = False

    async def _run(
        self, replayer: Replayer, runs: list[StepRun], audit: FeedbackAudit, watcher: AlertWatcher
    ) -> None:
        """The drill, raced against its deadline and its stop switch (which raise DrillAborted)."""
        self._check_stop()  # a drill asked to stop before it began sends nothing
        drill = asyncio.create_task(self._drill(replayer, runs, audit, watcher))
        watch = asyncio.create_task(self._stop_watch())
        try:
            done, _ = await asyncio.wait([drill, watch], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the drill's own error, or DrillAborted from the watch
        finally:
            # Cancelling the drill runs its own finally: traffic stopped, faults reverted.
            for task in (drill, watch):
                task.cancel()
            await asyncio.gather(drill, watch, return_exceptions=True)

    async def _stop_watch(self) -> None:
        """Raise DrillAborted once the stop switch is tripped or the deadline has passed."""
        while True:
            self._check_stop()
            await asyncio.sleep(STOP_POLL_S)

    def _check_stop(self) -> None:
        if self.stop.reason is not None:
            self._abort("stopped", f"stopped by {self.stop.reason}")
        if self.clock() >= self._deadline:
            self._abort("deadline", f"the drill's {self.scenario.deadline_s:g} s deadline passed")

    def _abort(self, reason: str, detail: str, **more: Any) -> None:
        """Record why the drill aborts (``t``: seconds of traffic, None before it began) and raise."""
        t = None if self._t0 is None else time.monotonic() - self._t0
        self.aborted = {"t": t, "reason": reason, "detail": detail, **more}
        self.progress(f"t={t or 0.0:5.1f}s  ABORT: {detail}")
        raise DrillAborted(detail)

    async def _drill(
        self, replayer: Replayer, runs: list[StepRun], audit: FeedbackAudit, watcher: AlertWatcher
    ) -> None:
        traffic = self.scenario.traffic
        async with self._admin_client() as admin, self._traffic_client() as users:
            await self._check_target(admin)
            await replayer.warm_up(traffic.warmup_requests)
            t0 = self._t0 = time.monotonic()
            self._traffic_start = datetime.now(UTC)
            times = shaped_arrival_times(traffic.rate_at, traffic.peak_rate, traffic.duration_s, traffic.seed)
            helpers = [
                asyncio.create_task(self._fault_schedule(runs, t0)),
                asyncio.create_task(watcher.run(admin, t0)),
                asyncio.create_task(self._progress_ticker(replayer, t0)),
                asyncio.create_task(self._abort_watch(replayer, t0)),
            ]
            feedback = asyncio.create_task(audit.run(users, traffic.duration_s, t0))
            replay = asyncio.create_task(
                replayer.run(traffic.rate, traffic.duration_s, traffic.seed, t0, times)
            )
            try:
                done, _ = await asyncio.wait([replay, helpers[3]], return_when=asyncio.FIRST_COMPLETED)
                if helpers[3] in done:
                    helpers[3].result()  # raises DrillAborted
                await replay
                await helpers[0]
                await feedback
            finally:
                for task in [*helpers, feedback, replay]:
                    task.cancel()
                await asyncio.gather(*helpers, feedback, replay, return_exceptions=True)
                for run in runs:  # on the event loop first, while it runs; the sync backstop follows
                    await asyncio.to_thread(self._revert, run, t0)

    async def _check_target(self, admin: httpx.AsyncClient) -> None:
        """Any answer from ``/readyz`` will do; no connection (or an untrusted certificate) stops here."""
        try:
            await admin.get("/readyz")
        except httpx.HTTPError as exc:
            hint = ""
            if is_verification_failure(exc):
                hint = " (its certificate is not trusted: give the CA bundle that signed it, --ca-bundle)"
            raise DrillError(f"cannot reach the target {self.target.base_url}: {exc}{hint}") from exc

    def _admin_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.target.base_url, headers=self.target.headers, timeout=5.0, verify=self.target.verify
        )

    def _traffic_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.target.traffic_url,
            headers=self.target.traffic_headers,
            timeout=self.scenario.traffic.timeout_s,
            verify=self.target.verify,
        )

    async def _fault_schedule(self, runs: list[StepRun], t0: float) -> None:
        events = sorted(
            [(r.step.start_s, 1, i) for i, r in enumerate(runs)]
            + [(r.step.end_s, 0, i) for i, r in enumerate(runs)]
        )
        for at_s, is_start, index in events:
            delay = t0 + at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if is_start:
                await asyncio.to_thread(self._inject, runs[index], t0)
            else:
                await asyncio.to_thread(self._revert, runs[index], t0)

    def _inject(self, run: StepRun, t0: float) -> None:
        try:
            run.handle = run.ftype.inject(self.target, run.params)
        except Exception as exc:  # a fault that cannot start is reported, and the drill goes on
            run.inject_error = f"{type(exc).__name__}: {exc}"[:300]
            self.progress(
                f"t={time.monotonic() - t0:5.1f}s  could not inject {run.step.name}: {run.inject_error}"
            )
            return
        run.injected_at_s = time.monotonic() - t0
        self.progress(f"t={run.injected_at_s:5.1f}s  inject {run.step.name} ({run.step.fault})")

    def _revert(self, run: StepRun, t0: float | None) -> None:
        if not run.needs_revert:
            return
        try:
            run.observed = run.ftype.revert(self.target, run.params, run.handle) or {}
        except Exception as exc:  # recorded; the cleanliness check will say what is left
            run.revert_error = f"{type(exc).__name__}: {exc}"[:300]
            log.error("could not revert %s: %s", run.step.name, run.revert_error)
            return
        run.revert_error = None
        run.reverted_at_s = run.step.end_s if t0 is None else time.monotonic() - t0
        self.progress(f"t={run.reverted_at_s:5.1f}s  revert {run.step.name}")

    def _revert_all(self, runs: list[StepRun]) -> None:
        for run in reversed(runs):
            self._revert(run, None)

    async def _progress_ticker(self, replayer: Replayer, t0: float) -> None:
        primary = self.scenario.primary_tier
        while True:
            await asyncio.sleep(5.0)
            done = replayer.records
            since = time.monotonic() - t0 - 5.0
            recent = [r for r in done if r.scheduled_s >= since]
            ok = sum(r.ok for r in recent)
            served = sum(1 for r in recent if r.served_by == primary)
            skipped = sum(1 for at in replayer.skipped if at >= since)
            line = f"{len(done)} requests; last 5 s: {ok}/{len(recent)} ok, {served} by {primary}"
            if skipped:
                line += f", {skipped} not sent (the drill is short of CPU)"
            self.progress(f"t={time.monotonic() - t0:5.1f}s  {line}")

    async def _abort_watch(self, replayer: Replayer, t0: float) -> None:
        """Raise DrillAborted once an abort condition has failed for its whole ``for_s``."""
        conditions = self.scenario.abort
        if not conditions:
            await asyncio.Event().wait()  # never: the replay ends first
        failing_since: dict[int, float] = {}
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic() - t0
            table = RequestTable.from_records(list(replayer.records))
            for index, condition in enumerate(conditions):
                # Requests of the last second may still be in flight: judge the second before it.
                stats = window_stats(table, max(0.0, now - 2.0), now - 1.0, self.scenario.primary_tier)
                if condition.holds(stats.metric(condition.metric, None)):
                    failing_since.pop(index, None)
                    continue
                since = failing_since.setdefault(index, now)
                if now - since >= condition.for_s:
                    detail = f"{condition.metric} out of bounds for {condition.for_s:g} s"
                    self._abort("condition", detail, condition=condition.model_dump())
