"""Drill scenarios: traffic, a fault timeline and steady-state hypotheses, read from validated YAML.

Every key is checked: an unknown key or a bad value is a :class:`ConfigError` naming where it is
(``faults[1].kind: Input should be 'latency', 'error', 'nan', 'kill' or 'pause'``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recdrill.errors import ConfigError, DataFileNotFoundError

Metric = Literal["availability", "availability_first_try", "p99_ms", "ndcg_ratio", "fallback_share"]
METRIC_HELP = {
    "availability": "share of requests answered with a 2xx status (after at most one retry)",
    "availability_first_try": "share of requests answered with a 2xx status without a retry",
    "p99_ms": "99th percentile latency in milliseconds, measured from the scheduled send time",
    "ndcg_ratio": "NDCG@10 of served lists divided by the pre-fault baseline's",
    "fallback_share": "share of answers not served by the primary tier",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Traffic(_Strict):
    """Open-loop Poisson arrivals at ``rate`` per second for ``duration_s`` seconds."""

    rate: float = Field(gt=0, le=5000)
    duration_s: float = Field(gt=0, le=3600)
    k: int = Field(10, ge=1, le=100)
    timeout_s: float = Field(2.0, gt=0, le=60)
    seed: int = 0
    warmup_requests: int = Field(20, ge=0, le=10_000, description="sent before the clock starts, not judged")
    retry: bool = Field(
        True,
        description="retry a failed request once (connection lost, 502/503/504): /v1/recommend is idempotent",
    )


FaultKind = Literal["latency", "error", "nan", "kill", "pause"]
PROCESS_KINDS = frozenset({"kill", "pause"})  # act on a worker process (point "worker"), not through HTTP


class FaultStep(_Strict):
    """Inject a fault at ``at_s`` for ``duration_s`` seconds (then revert it).

    Model faults (``latency``, ``error``, ``nan``) go through the admin API, at the primary model
    (point ``ranker``) or the second-tier model (point ``fallback``). Process faults act on
    worker ``worker`` (an index into the target's worker pids, sorted): ``kill`` sends SIGKILL at
    ``at_s`` (nothing to revert: the supervisor starts a replacement; ``duration_s`` is the window in
    which recovery is judged), ``pause`` sends SIGSTOP at ``at_s`` and SIGCONT at the end.
    ``point`` defaults to ``worker`` for process faults and ``ranker`` for the others.

    A pause longer than the supervisor's health check (5 s, ``WORKER_HEALTHCHECK_S``) becomes a kill:
    the supervisor gives up on the silent worker and replaces it; the journal then says so.
    """

    name: str = Field(min_length=1)
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    point: Literal["ranker", "fallback", "worker"]
    kind: FaultKind
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    rate: float = Field(1.0, ge=0, le=1)
    worker: int = Field(0, ge=0, le=1023)

    @model_validator(mode="before")
    @classmethod
    def _point_from_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("point") is None:
            return {**data, "point": "worker" if data.get("kind") in PROCESS_KINDS else "ranker"}
        return data

    @model_validator(mode="after")
    def _point_fits_kind(self) -> FaultStep:
        if (self.kind in PROCESS_KINDS) != (self.point == "worker"):
            wanted = "'worker'" if self.kind in PROCESS_KINDS else "'ranker' or 'fallback'"
            raise ValueError(f"a {self.kind!r} fault acts on point {wanted}, not {self.point!r}")
        return self

    @property
    def end_s(self) -> float:
        return self.at_s + self.duration_s

    @property
    def is_process_fault(self) -> bool:
        return self.point == "worker"


class Hypothesis(_Strict):
    """A steady-state condition: ``metric`` must stay within ``min``/``max`` over each window."""

    name: str = Field(min_length=1)
    metric: Metric
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> Hypothesis:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` is within bounds; a window without data (None) does not deviate."""
        if value is None:
            return True
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Scenario(_Strict):
    """A whole drill. Times are seconds from the start of traffic."""

    name: str = Field(min_length=1)
    description: str = ""
    traffic: Traffic
    baseline_s: float = Field(10.0, gt=0, description="fault-free lead-in that defines the baseline")
    after_s: float = Field(5.0, gt=0, description="final stretch checked as the 'after' steady state")
    window_s: float = Field(2.0, gt=0, le=60, description="sliding window of the continuous checks")
    primary_tier: str = "primary"
    faults: list[FaultStep] = Field(default_factory=list)
    hypotheses: list[Hypothesis] = Field(min_length=1)

    @model_validator(mode="after")
    def _timeline_fits(self) -> Scenario:
        duration = self.traffic.duration_s
        for fault in self.faults:
            if fault.at_s < self.baseline_s:
                raise ValueError(
                    f"fault {fault.name!r} starts at {fault.at_s} s, inside the {self.baseline_s} s baseline"
                )
            if fault.end_s + self.after_s > duration:
                raise ValueError(
                    f"fault {fault.name!r} ends at {fault.end_s} s: with after_s={self.after_s} the traffic "
                    f"must last at least {fault.end_s + self.after_s} s, not {duration} s"
                )
        names = [f.name for f in self.faults]
        if len(set(names)) != len(names):
            raise ValueError("fault names must be unique")
        return self


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; errors name the source and the offending key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a scenario must be a mapping of keys, got {type(raw).__name__}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]).replace(".[", "[")
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {where or 'scenario'}: {message}{more}") from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(path)
    return parse_scenario(path.read_text(), str(path))


def builtin_scenario(name: str) -> Scenario:
    """A scenario shipped with recdrill (``gameday``, ``gameday-short``)."""
    resource = resources.files("recdrill.drills") / "scenarios" / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"no built-in scenario {name!r}")
    return parse_scenario(resource.read_text(), f"built-in scenario {name!r}")
