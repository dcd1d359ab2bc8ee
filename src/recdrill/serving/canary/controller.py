"""Canary and shadow serving of a registry version beside the primary model, judged online.

``POST /admin/models/canary`` loads a registry version as the **candidate**, verified and checked
exactly as a reload is (``ModelReloader.load_version``), and moves it to the ``canary`` stage:

- ``canary`` mode: a sticky ``share`` of users, by a hash of the user id salted with the version
  (a user sees one arm for the canary's life; another canary draws other users), get the candidate
  in the primary tier; fallback, cache, category and popular tiers are the primary's, unchanged.
  Every answer's ``model_version`` names its arm. Anonymous requests (a history, no user id) stay on
  the primary: nobody could label them.
- ``shadow`` mode: every answer comes from the primary; for a sticky ``share`` of users the
  candidate also scores the same request in a task of its own after the answer is built, bounded in
  number (``SHADOW_MAX_IN_FLIGHT``, the rest are dropped and counted) and in time, so it never
  delays or fails an answer. Overlap@10 between the two lists and the candidate's latency are
  recorded, and both lists are remembered for labels, which gives a paired quality comparison.
  The candidate's latency there is its model tier's alone, the primary's the whole answer's, so a
  p99 comparison in shadow mode errs in the candidate's favour; canary mode compares like with like.

Labels come from ``/v1/feedback`` (``canary_stats.py``). About once a second each worker runs the
judge (``canary_judge.py``) on its own statistics. Per worker is the simple race-free choice: no
shared counters to lock, and every effect of a decision is idempotent. On ``rollback`` the worker
drops the candidate at once, publishes the stop for its peers, archives the version in the registry
with the reason (``Registry.archive``: once, whichever worker gets there first), logs one line and
counts it. On ``promote`` it only reports, unless the canary was started with ``auto_promote``: then
the candidate is reloaded as the primary through the reload path (peers follow that pointer too),
becomes ``production`` in the registry, and the canary ends.

Other workers follow start and stop as they follow reloads: the worker that changed the canary
writes ``canary.json`` in the state folder (``canary_records.py``) and the others read it every
``FOLLOW_S``; a worker started later picks it up on its first look. ``GET /admin/models/canary``
answers from the worker it reaches: its own arms' figures, and the latest change by any worker.

Modules: ``canary_arm.py`` (the spec, sticky share, the candidate's chain), ``canary_stats.py``
(labels and latency per arm), ``canary_judge.py`` (the decision), ``canary_records.py`` (pointer
file and registry stages); this one wires them into the request path and runs the judge.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from recdrill.data.pseudonymise import default_pseudonymiser
from recdrill.errors import ConfigError
from recdrill.registry.stages import Stage
from recdrill.serving.canary.arm import ArmChoice, CanarySpec, CandidateArm
from recdrill.serving.canary.judge import Verdict
from recdrill.serving.canary.records import (
    CanaryPointer,
    archive,
    enter_canary_stage,
    record_identity,
    set_stage,
    write_registry,
)
from recdrill.serving.canary.stats import TOP, ArmTracker
from recdrill.serving.generation import Generation, WorkerResources
from recdrill.serving.reload import FOLLOW_S, RETIRE_AFTER_S, HoldsGeneration, ModelReloader, server_group
from recdrill.serving.router import RoutedAnswer
from recdrill.serving.tiers import TierRequest

log = logging.getLogger(__name__)
JUDGE_S = 1.0
SHADOW_MAX_IN_FLIGHT = 8
SHADOW_TIMEOUT_S = 1.0
__all__ = ["ArmChoice", "CanaryController", "CanarySpec"]


class CanaryController:
    """One worker's canary: routing, statistics, judging, and following its peers."""

    def __init__(self, resources: WorkerResources, reloader: ModelReloader, group: str | None = None) -> None:
        self.resources = resources
        self.metrics = resources.metrics
        self.reloader = reloader
        self.pointer = CanaryPointer(resources.config.state_dir, server_group() if group is None else group)
        self.tracker = ArmTracker(default_pseudonymiser())
        self.candidate: CandidateArm | None = None
        self.verdict: Verdict | None = None
        self.decisions: list[dict[str, Any]] = []  # what the judge decided, newest last
        self._lock = asyncio.Lock()
        self._seen_pointer: str | None = None
        self.last_change: dict[str, Any] | None = None  # the latest start or end, by any worker
        self._shadows: set[asyncio.Task[None]] = set()
        self._overlap = [0.0, 0]  # sum, count

    # --- the request path -----------------------------------------------------------------------

    def choose(self, primary: Generation, request: TierRequest) -> ArmChoice:
        """The arm for one request (the primary unless a canary takes this user)."""
        candidate = self.candidate
        if candidate is None:
            return ArmChoice("primary", primary.version, primary.router)
        takes = candidate.takes(request.user)
        if candidate.spec.mode == "shadow":
            return ArmChoice("primary", primary.version, primary.router, shadow=takes)
        router = candidate.router(primary) if takes else None
        if router is None:
            return ArmChoice("primary", primary.version, primary.router)
        return ArmChoice("candidate", candidate.spec.version, router)

    def observe(
        self,
        choice: ArmChoice,
        primary: Generation,
        request: TierRequest,
        routed: RoutedAnswer,
        latency_s: float,
    ) -> None:
        """After an answer: count it for its arm, remember the list, start the shadow scoring."""
        candidate = self.candidate
        if candidate is None or (candidate.spec.mode == "shadow" and not choice.shadow):
            return
        self.tracker.answered(choice.arm, latency_s)
        self.metrics.arm_answers.labels(choice.arm).inc()
        self.metrics.arm_latency.labels(choice.arm).observe(latency_s)
        if request.user is None:
            return
        ids = primary.snapshot.item_ids
        self.tracker.served(choice.arm, request.user, ids[routed.answer.items[:TOP]].tolist())
        if choice.shadow and len(request.history) > 0:
            if len(self._shadows) >= SHADOW_MAX_IN_FLIGHT:
                self.metrics.shadow.labels("dropped").inc()
                return
            task = asyncio.create_task(self._shadow(candidate, primary, request, routed.answer.items[:TOP]))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def _shadow(
        self, candidate: CandidateArm, primary: Generation, request: TierRequest, served: np.ndarray
    ) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(SHADOW_TIMEOUT_S):
                answer = await candidate.tier.serve(request)
        except Exception as exc:  # the shadow's failure is a finding, never the client's problem
            log.debug("shadow scoring by %s failed: %s", candidate.spec.version, exc)
            self.metrics.shadow.labels("error").inc()
            return
        latency_s = time.perf_counter() - started
        if self.candidate is not candidate or request.user is None:
            return  # stopped meanwhile
        top = answer.items[:TOP]
        overlap = len(np.intersect1d(top, served)) / max(1, min(TOP, request.k))
        self._overlap[0] += overlap
        self._overlap[1] += 1
        self.metrics.shadow.labels("scored").inc()
        self.metrics.shadow_overlap.observe(overlap)
        self.tracker.answered("candidate", latency_s)
        self.metrics.arm_answers.labels("candidate").inc()
        self.metrics.arm_latency.labels("candidate").observe(latency_s)
        self.tracker.served("candidate", request.user, primary.snapshot.item_ids[top].tolist())

    def feedback(self, user_id: str, item_id: str, event: str) -> None:
        """Score a committed feedback event against the user's remembered lists."""
        if self.candidate is None:
            return
        for arm, value in self.tracker.labelled(user_id, item_id, event):
            self.metrics.arm_ndcg.labels(arm).observe(value)

    # --- start, stop, judge ---------------------------------------------------------------------

    async def start(self, spec: CanarySpec, primary: Generation) -> dict[str, Any]:
        """Load, verify and install ``spec.version`` as the candidate; publish it for the peers.

        Raises:
            ArtifactRefusedError, VersionNotFoundError, KeyMaterialError, ModelFileError: refused at
                load, as a reload would be. ConfigError: another catalogue, or the primary's version.
            StageError: the version is in production or archived.
        """
        async with self._lock:
            if spec.version == primary.version:
                raise ConfigError(f"{spec.version} is the primary model already")
            generation = await asyncio.to_thread(self.reloader.load_version, spec.version)
            try:
                if not np.array_equal(generation.snapshot.item_ids, primary.snapshot.item_ids):
                    raise ConfigError(f"{spec.version} scores another catalogue than the primary model")
                await asyncio.to_thread(enter_canary_stage, spec.version)
            except BaseException:
                generation.close()
                raise
            self._install(spec, generation)
            self._publish(spec, active=True, reason="started")
        log.warning("canary %s started: %s of users, %s mode", spec.version, f"{spec.share:.0%}", spec.mode)
        return self.summary(primary)

    async def stop(self, reason: str = "stopped by an operator") -> str | None:
        """Remove the candidate, tell the peers, and move it back to ``candidate``; its version or None."""
        async with self._lock:
            candidate = self.candidate
            if candidate is None:
                return None
            self._uninstall()
            self._publish(candidate.spec, active=False, reason=reason)
        await write_registry(set_stage, candidate.spec.version, Stage.CANDIDATE, f"canary {reason}")
        log.warning("canary %s stopped: %s", candidate.spec.version, reason)
        return candidate.spec.version

    async def judge_once(self, holder: HoldsGeneration) -> Verdict | None:
        """Run the judge on this worker's statistics and act on its decision (see the module doc)."""
        candidate = self.candidate
        if candidate is None:
            return None
        verdict = candidate.spec.judge.decide(self.tracker.stats("primary"), self.tracker.stats("candidate"))
        changed = self.verdict is None or self.verdict.decision != verdict.decision
        self.verdict = verdict
        if verdict.decision == "rollback":
            await self._rollback(candidate, verdict)
        elif verdict.decision == "promote" and changed:
            self._decided(candidate, verdict)
            log.warning("canary %s may be promoted: %s", candidate.spec.version, verdict.reason)
            if candidate.spec.auto_promote:
                await self._promote(holder, candidate, verdict)
        return verdict

    async def _rollback(self, candidate: CandidateArm, verdict: Verdict) -> None:
        async with self._lock:
            if self.candidate is not candidate:
                return
            self._uninstall()
            self._publish(candidate.spec, active=False, reason=f"rollback: {verdict.reason}")
        self._decided(candidate, verdict)
        log.warning("canary %s rolled back: %s", candidate.spec.version, verdict.reason)
        await write_registry(archive, candidate.spec.version, f"canary rollback: {verdict.reason}")

    async def _promote(self, holder: HoldsGeneration, candidate: CandidateArm, verdict: Verdict) -> None:
        version = candidate.spec.version
        try:
            await self.reloader.reload_version(holder, version)
        except Exception as exc:  # refused now (tampered since?): keep the canary, say so
            log.error("canary %s could not be promoted: %s", version, exc)
            return
        async with self._lock:
            if self.candidate is candidate:
                self._uninstall()
                self._publish(candidate.spec, active=False, reason=f"promoted: {verdict.reason}")
        await write_registry(set_stage, version, Stage.PRODUCTION, f"canary promoted: {verdict.reason}")

    def _decided(self, candidate: CandidateArm, verdict: Verdict) -> None:
        self.metrics.canary_decisions.labels(verdict.decision).inc()
        primary, tried = self.tracker.stats("primary"), self.tracker.stats("candidate")
        self.decisions.append(
            {
                "version": candidate.spec.version,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "answers": primary.answers + tried.answers,
                "labels": primary.labels + tried.labels,
                "at": time.time(),
            }
        )

    async def run(self, holder: HoldsGeneration, every_s: float = min(FOLLOW_S, JUDGE_S)) -> None:
        """Forever: follow the peers' canary changes, then judge (run as a background task)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self._follow(holder.generation)
                await self.judge_once(holder)
            except Exception:
                log.exception("canary loop failed; trying again")

    async def _follow(self, primary: Generation) -> None:
        record = self.pointer.read()
        if record is None:
            return
        self.last_change = {k: record[k] for k in ("active", "reason", "at")} | {
            "version": record["spec"].get("version")
        }
        key = record_identity(record)
        if key == self._seen_pointer:
            return
        self._seen_pointer = key
        spec = CanarySpec.from_record(record["spec"])
        current = self.candidate
        if not record["active"]:
            if current is not None and current.spec == spec:
                async with self._lock:
                    self._uninstall()
                log.warning("canary %s ended by a peer: %s", spec.version, record.get("reason", ""))
            return
        if current is not None and current.spec == spec:
            return
        try:
            generation = await asyncio.to_thread(self.reloader.load_version, spec.version)
        except Exception as exc:
            log.error("could not follow the canary of %s: %s", spec.version, exc)
            return
        async with self._lock:
            if self._seen_pointer != key:  # this worker started or stopped a canary meanwhile
                generation.close()
                return
            self._install(spec, generation)

    def _install(self, spec: CanarySpec, generation: Generation) -> None:
        self._uninstall()
        self.tracker.reset()
        self.verdict = None
        self._overlap = [0.0, 0]
        self.candidate = CandidateArm(spec, generation, self.resources)
        if "canary" in self.resources.breakers:
            self.resources.breakers["canary"].reset()

    def _uninstall(self) -> None:
        candidate, self.candidate = self.candidate, None
        if candidate is not None:  # requests under way may still use it: close it later
            asyncio.get_running_loop().call_later(RETIRE_AFTER_S, candidate.generation.close)

    def close(self) -> None:
        for task in list(self._shadows):
            task.cancel()
        if self.candidate is not None:
            self.candidate.generation.close()
            self.candidate = None

    # --- what operators read --------------------------------------------------------------------

    def summary(self, primary: Generation) -> dict[str, Any]:
        """Per-arm samples, mean NDCG@10 and p99 latency, the judge's last verdict, past decisions."""
        candidate = self.candidate
        arms = {}
        for arm, version in (
            ("primary", primary.version),
            ("candidate", candidate.spec.version if candidate else None),
        ):
            stats = self.tracker.stats(arm)
            arms[arm] = {
                "version": version,
                "answers": stats.answers,
                "samples": stats.labels,
                "ndcg10": stats.ndcg_mean if stats.labels else None,
                "p99_ms": stats.p99_ms,
            }
        body: dict[str, Any] = {
            "active": candidate is not None,
            "worker": os.getpid(),
            "arms": arms,
            "unmatched_labels": self.tracker.unmatched,
            "verdict": None if self.verdict is None else asdict(self.verdict),
            "decisions": self.decisions[-20:],
            "last_change": self.last_change,
        }
        if candidate is not None:
            body.update(version=candidate.spec.version, share=candidate.spec.share, mode=candidate.spec.mode)
            body["judge"] = asdict(candidate.spec.judge)
            body["auto_promote"] = candidate.spec.auto_promote
            if candidate.spec.mode == "shadow":
                total, count = self._overlap
                body["shadow"] = {"scored": count, "overlap10": total / count if count else None}
        return body

    def _publish(self, spec: CanarySpec, *, active: bool, reason: str) -> None:
        key = self.pointer.publish(spec.to_record(), active=active, reason=reason)
        if key is not None:
            self._seen_pointer = key  # this worker's own change: nothing to follow
        self.last_change = {"active": active, "reason": reason, "at": time.time(), "version": spec.version}
