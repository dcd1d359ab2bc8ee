"""Drill scenarios: traffic, a fault timeline and steady-state hypotheses, read from validated YAML.

Every key is checked: an unknown key or a bad value is a :class:`ConfigError` naming where it is
(``faults[1].kind: Input should be 'latency', 'error', 'nan', 'kill' or 'pause'``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recdrill.drills.faults.catalogue import FaultParams, fault_type
from recdrill.drills.pacing import SEND_SLACK_S
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
    shape: Literal["constant", "ramp", "spike"] = "constant"
    ramp_to: float | None = Field(None, gt=0, le=5000, description="ramp: the rate at the end")
    spike_at_s: float | None = Field(None, ge=0, description="spike: when the rate jumps")
    spike_s: float = Field(10.0, gt=0, le=3600, description="spike: how long it lasts")
    spike_multiplier: float = Field(5.0, ge=1, le=100)
    feedback_rate: float = Field(
        2.0, ge=0, le=500, description="feedback events per second whose acknowledgement the drill audits"
    )
    send_slack_s: float = Field(
        SEND_SLACK_S,
        gt=0,
        le=10,
        description="a request this late (the drill short of CPU) is skipped, and counted, not sent late",
    )

    @model_validator(mode="after")
    def _shape_has_its_keys(self) -> Traffic:
        if self.shape == "ramp" and self.ramp_to is None:
            raise ValueError("a ramp needs ramp_to (the rate at the end)")
        if self.shape == "spike" and self.spike_at_s is None:
            raise ValueError("a spike needs spike_at_s")
        return self

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """The target rate at times ``t`` (seconds from the start of traffic)."""
        t = np.asarray(t, dtype=np.float64)
        if self.shape == "ramp":
            assert self.ramp_to is not None
            return self.rate + (self.ramp_to - self.rate) * np.clip(t / self.duration_s, 0.0, 1.0)
        if self.shape == "spike":
            assert self.spike_at_s is not None
            inside = (t >= self.spike_at_s) & (t < self.spike_at_s + self.spike_s)
            return np.where(inside, self.rate * self.spike_multiplier, self.rate)
        return np.full_like(t, self.rate)

    @property
    def peak_rate(self) -> float:
        if self.shape == "ramp":
            return max(self.rate, self.ramp_to or 0.0)
        return self.rate * (self.spike_multiplier if self.shape == "spike" else 1.0)


LEGACY_KINDS = ("latency", "error", "nan", "kill", "pause")  # the first scenario format's ``kind:``
# A drill's default deadline: its duration plus half again (warm-up, reverts, a slow host), and at
# least a minute (a reload, a worker's replacement).
DEADLINE_MARGIN_SHARE = 0.5
MIN_DEADLINE_MARGIN_S = 60.0


class FaultStep(_Strict):
    """Inject catalogue fault ``fault`` (see ``recdrill drill list``) for ``duration_s`` seconds.

    ``at_s`` places the step on the drill's clock, so steps may overlap (run in parallel). Without
    ``at_s`` the step follows the one before it in the list: it starts ``gap_s`` after that one ends.

    The first scenario format is still read: ``kind: latency|error|nan`` at ``point: ranker|fallback``
    with ``latency_ms``/``rate``, and ``kind: kill|pause`` with ``worker`` (now ``worker-kill`` and
    ``worker-freeze``).
    """

    name: str = Field(min_length=1)
    fault: str = Field(min_length=1)
    at_s: float | None = Field(None, ge=0)
    gap_s: float = Field(5.0, ge=0, le=3600)
    duration_s: float = Field(gt=0, le=3600)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_first_format(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "kind" not in data or "fault" in data:
            return data
        data = dict(data)
        kind, point = data.pop("kind"), data.pop("point", None)
        if kind not in LEGACY_KINDS:
            raise ValueError(
                f"kind {kind!r} is not one of {', '.join(LEGACY_KINDS)}; or name a fault with 'fault:'"
            )
        params = {key: data.pop(key) for key in ("latency_ms", "rate", "worker") if key in data}
        if kind in ("kill", "pause"):
            if point not in (None, "worker"):
                raise ValueError(f"a {kind!r} fault acts on point 'worker', not {point!r}")
            data["fault"] = "worker-kill" if kind == "kill" else "worker-freeze"
        else:
            if point not in (None, "ranker", "fallback"):
                raise ValueError(f"a {kind!r} fault acts on point 'ranker' or 'fallback', not {point!r}")
            data["fault"] = f"{point or 'ranker'}-{kind}"
        return {**data, "params": {**params, **data.get("params", {})}}

    @model_validator(mode="after")
    def _params_fit_the_fault(self) -> FaultStep:
        try:
            fault_type(self.fault).parse(self.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def start_s(self) -> float:
        assert self.at_s is not None, "a Scenario places every step"
        return self.at_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def parsed_params(self, defaults: dict[str, Any] | None = None) -> FaultParams:
        """The fault's validated parameters; ``defaults`` fill fields the step leaves out (if the
        fault has them): the runner passes ``ttl_s`` and ``base_rate``."""
        ftype = fault_type(self.fault)
        fields = ftype.params.model_fields
        extra = {k: v for k, v in (defaults or {}).items() if k in fields and k not in self.params}
        return ftype.parse({**extra, **self.params})


class _Bounded(_Strict):
    """``metric`` within ``min``/``max`` (at least one given)."""

    metric: Metric
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> _Bounded:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` is within bounds; a window without data (None) does not deviate."""
        if value is None:
            return True
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class AbortCondition(_Bounded):
    """Blast radius: stop the drill when ``metric`` stays outside its bounds for ``for_s`` seconds."""

    for_s: float = Field(10.0, gt=0, le=3600)


RollbackAction = Literal["remove-server-faults", "restore-model", "continue-workers"]
ROLLBACK_HELP = {
    "remove-server-faults": "delete every fault the server holds, the drill's or not",
    "restore-model": "reload the configured model if the served version differs from the drill's start",
    "continue-workers": "SIGCONT any stopped worker",
}


class Rollback(_Strict):
    """An action run on every exit path, after the drill's own faults are reverted."""

    action: RollbackAction


class Objectives(_Strict):
    """What the scorecard judges each fault against."""

    detect_s: float = Field(15.0, gt=0)
    failover_s: float = Field(2.0, gt=0)
    recover_s: float = Field(30.0, gt=0)
    availability: float = Field(0.99, ge=0, le=1)
    quality_kept: float = Field(0.5, ge=0, le=10)


class Hypothesis(_Bounded):
    """A steady-state condition: ``metric`` must stay within ``min``/``max`` over each window."""

    name: str = Field(min_length=1)


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
    abort: list[AbortCondition] = Field(default_factory=list)
    rollbacks: list[Rollback] = Field(
        default_factory=lambda: [Rollback(action="continue-workers")],
        description="run on every exit path after the drill's own faults are reverted",
    )
    objectives: Objectives = Field(default_factory=lambda: Objectives.model_validate({}))
    deadline_margin_s: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="the drill aborts this long after its traffic should have ended "
        f"(default: {DEADLINE_MARGIN_SHARE:.0%} of the duration, at least {MIN_DEADLINE_MARGIN_S:g} s)",
    )

    @property
    def deadline_s(self) -> float:
        """Seconds from the start of the drill after which it aborts: the traffic's duration plus
        ``deadline_margin_s`` (by default half the duration, at least a minute)."""
        duration = self.traffic.duration_s
        margin = self.deadline_margin_s
        if margin is None:
            margin = max(MIN_DEADLINE_MARGIN_S, DEADLINE_MARGIN_SHARE * duration)
        return duration + margin

    @model_validator(mode="after")
    def _timeline_fits(self) -> Scenario:
        duration = self.traffic.duration_s
        placed: list[FaultStep] = []
        for step in self.faults:
            if step.at_s is None:  # ordered: after the previous step in the list
                start = (placed[-1].end_s if placed else self.baseline_s) + (step.gap_s if placed else 0.0)
                step = step.model_copy(update={"at_s": start})
            placed.append(step)
        for fault in placed:
            if fault.start_s < self.baseline_s:
                raise ValueError(
                    f"fault {fault.name!r} starts at {fault.start_s} s, "
                    f"inside the {self.baseline_s} s baseline"
                )
            if fault.end_s + self.after_s > duration:
                raise ValueError(
                    f"fault {fault.name!r} ends at {fault.end_s} s: with after_s={self.after_s} the traffic "
                    f"must last at least {fault.end_s + self.after_s} s, not {duration} s"
                )
        names = [f.name for f in placed]
        if len(set(names)) != len(names):
            raise ValueError("fault names must be unique")
        object.__setattr__(self, "faults", placed)  # frozen model: placing steps is part of validation
        return self


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; errors name the source and the offending key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # One line, as every error: the parser's message with its line, not its caret drawing.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML: {problem}{where}") from exc
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


def builtin_names() -> list[str]:
    """The scenarios shipped with recdrill (``gameday``, ``peak-day``, ...)."""
    folder = resources.files("recdrill.drills") / "scenarios"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_scenario(name: str) -> Scenario:
    """A scenario shipped with recdrill (see :func:`builtin_names`)."""
    resource = resources.files("recdrill.drills") / "scenarios" / f"{name}.yaml"
    if not resource.is_file():
        raise ConfigError(f"no built-in scenario {name!r}; built in: {', '.join(builtin_names())}")
    return parse_scenario(resource.read_text(), f"built-in scenario {name!r}")
