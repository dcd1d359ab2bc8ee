"""The candidate arm of a canary: what was asked for, which users it takes, the chain it serves in.

A user is in the candidate's share when a 64-bit hash of the version and the user id, read as a
fraction, is below ``share``: sticky for the canary's life without storing anything, independent
of the primary arm's order of arrival, and drawn afresh for the next candidate version (the same
unlucky users do not get every experiment). The candidate takes only the primary tier's place;
fallback, cache, category and popular tiers are the primary generation's own, so a canary user
degrades exactly as everyone else does. The candidate's model tier has its own circuit breaker
(``canary``): its failures must not open the primary's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from recdrill.errors import ConfigError
from recdrill.serving.canary.judge import CanaryJudge
from recdrill.serving.generation import SHARES, Generation, WorkerResources
from recdrill.serving.router import Route, TierRouter
from recdrill.serving.tiers import Tier

log = logging.getLogger(__name__)
Mode = Literal["canary", "shadow"]


@dataclass(frozen=True)
class CanarySpec:
    """What was asked for: the version, its share of users, the mode, the judge, auto-promotion."""

    version: str
    share: float
    mode: Mode = "canary"
    auto_promote: bool = False
    judge: CanaryJudge = field(default_factory=CanaryJudge)

    def __post_init__(self) -> None:
        if not 0.0 < self.share <= 1.0:
            raise ConfigError(f"canary share must be in (0, 1], got {self.share!r}")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CanarySpec:
        fields = dict(record)
        fields["judge"] = CanaryJudge(**fields.get("judge", {}))
        return cls(**fields)


@dataclass(frozen=True)
class ArmChoice:
    """Which arm answers a request: its name (``primary``, ``candidate``), the version an answer
    names, the chain it goes through, and whether the candidate also shadow-scores it."""

    arm: str
    version: str
    router: TierRouter
    shadow: bool = False


class CandidateArm:
    """The loaded candidate, the users it takes, and the chain it serves in (the primary's, with the
    candidate's model first), rebuilt when the primary is reloaded."""

    def __init__(self, spec: CanarySpec, generation: Generation, resources: WorkerResources) -> None:
        self.spec = spec
        self.generation = generation
        self.tier: Tier = generation.router.routes[0].tier  # the candidate's model tier
        self.resources = resources
        self._built_for: Generation | None = None
        self._router: TierRouter | None = None

    def router(self, primary: Generation) -> TierRouter | None:
        """The primary's chain with the candidate in its first tier; None for another catalogue."""
        if self._built_for is not primary:
            self._built_for = primary
            self._router = None
            if np.array_equal(primary.snapshot.item_ids, self.generation.snapshot.item_ids):
                budget = SHARES["primary"] * primary.router.deadline_s
                breaker = self.resources.breaker("canary", slow_call_s=0.8 * budget)
                routes = [Route(self.tier, SHARES["primary"], breaker), *primary.router.routes[1:]]
                self._router = TierRouter(routes, primary.popular, deadline_s=primary.router.deadline_s)
            else:
                log.error(
                    "canary %s: the primary's catalogue changed; serving the primary", self.spec.version
                )
        return self._router

    def takes(self, user_id: str | None) -> bool:
        """Whether ``user_id`` is in the candidate's sticky share."""
        if user_id is None:
            return False
        digest = hashlib.blake2b(f"{self.spec.version}\0{user_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64 < self.spec.share
