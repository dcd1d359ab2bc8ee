"""The fault catalogue: every fault a drill can inject, as a named pair of plain functions.

A fault type is ``inject(target, params) -> handle`` and ``revert(target, params, handle) ->
observations``, registered under a name with a pydantic parameter schema. ``inject`` starts the
fault and returns whatever ``revert`` needs to undo it (a fault id, a worker, a thread); ``revert``
undoes it, must be safe to call again, and returns what the fault made observable (counts of
side traffic, a refused reload) as a plain dict for the journal, or None. ``leftovers(target)``
names anything of this fault type still active on the target: the cleanliness check after a
drill reads it, whatever the drill did.

The functions are synchronous and hold their own threads where a fault needs a background (side
traffic, a CPU hog), so the drill runner and Chaos Toolkit (``recdrill.chaos``) call the same
functions.

Example:
    >>> from recdrill.drills.faults.catalogue import fault_type
    >>> fault_type("ranker-latency").kind
    'ml'
    >>> fault_type("ranker-latency").parse({"latency_ms": 250}).latency_ms
    250.0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from recdrill.errors import ConfigError

if TYPE_CHECKING:
    from recdrill.drills.target import DrillTarget

FaultKind = Literal["infrastructure", "ml"]
# What a fault needs of the target beyond its HTTP API (see ``DrillTarget.require``).
Need = Literal["workers", "state_dir", "model_dir", "snapshot", "proxy", "plan", "local"]
Observations = dict[str, Any] | None

# The modules that register fault types, imported on first use of the catalogue.
FAULT_MODULES = (
    "recdrill.drills.faults.model",
    "recdrill.drills.faults.process",
    "recdrill.drills.faults.host",
    "recdrill.drills.faults.network",
    "recdrill.drills.faults.store",
    "recdrill.drills.faults.cache",
    "recdrill.drills.faults.traffic",
    "recdrill.drills.faults.artifact",
    "recdrill.drills.faults.bad_push",
)


class FaultParams(BaseModel):
    """Base of every fault's parameters: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(FaultParams):
    """A fault without parameters."""


@dataclass(frozen=True)
class FaultType:
    """One entry of the catalogue."""

    name: str
    kind: FaultKind
    summary: str
    params: type[FaultParams]
    inject: Callable[[DrillTarget, Any], Any]
    revert: Callable[[DrillTarget, Any, Any], Observations]
    needs: frozenset[str] = frozenset()
    effect: str = ""  # what a drill should observe while it is active
    # The deployment's alerts (``recdrill.drills.alerts.SIGNALS``) that can tell this fault apart.
    # Faults run against live traffic, and an alert raised by something else at the same time (the
    # drift monitor reacting to the drill's own traffic mix, say) must not count as detecting them;
    # None: any alert; empty: none (only the hypotheses can see the fault).
    detected_by: frozenset[str] | None = None
    leftovers: Callable[[DrillTarget], list[str]] | None = None
    # Checked before a drill starts (raise RecdrillError to refuse): a fault that cannot act on this
    # target should stop the drill before any traffic, not show up as an error halfway through.
    preflight: Callable[[DrillTarget, Any], None] | None = None

    def parse(self, raw: Mapping[str, Any] | None) -> FaultParams:
        """Validate parameters; errors name the fault and the parameter."""
        try:
            return self.params.model_validate(dict(raw or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"fault {self.name!r}: {where}: {message}") from exc

    def describe(self) -> dict[str, Any]:
        """``{"name", "kind", "summary", "effect", "needs", "params": {NAME: {...}}}`` for ``drill list``."""
        schema = self.params.model_json_schema()
        params = {}
        for name, prop in schema.get("properties", {}).items():
            entry = {k: prop[k] for k in ("type", "default", "description", "enum") if k in prop}
            if "anyOf" in prop:
                entry["type"] = " | ".join(str(p.get("type", "?")) for p in prop["anyOf"])
            for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if bound in prop:
                    entry[bound] = prop[bound]
            params[name] = entry
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "effect": self.effect,
            "needs": sorted(self.needs),
            "params": params,
        }


_REGISTRY: dict[str, FaultType] = {}
_loaded = False


def register(fault: FaultType) -> FaultType:
    """Add a fault type; a second one under the same name is a programming error.

    The same module imported twice (pytest's doctest collection does so) registers the same
    functions again: that is not a clash, and the first registration stays.
    """
    known = _REGISTRY.get(fault.name)
    if known is not None:
        if _origin(known) != _origin(fault):
            raise ValueError(f"fault type {fault.name!r} is registered twice")
        return known
    _REGISTRY[fault.name] = fault
    return fault


def _origin(fault: FaultType) -> tuple[str, str]:
    # By file name: a second import may give the module another dotted name (pytest --import-mode=importlib).
    return fault.inject.__module__.rsplit(".", 1)[-1], fault.inject.__qualname__


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in FAULT_MODULES:
            importlib.import_module(module)
        _loaded = True


def catalogue() -> list[FaultType]:
    """Every registered fault type, infrastructure first, then by name."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda f: (f.kind != "infrastructure", f.name))


def fault_type(name: str) -> FaultType:
    """The fault type registered as ``name``; a ConfigError lists the known names otherwise."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"no fault named {name!r}; known faults: {known}") from None
