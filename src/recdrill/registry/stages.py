"""A version's life: candidate -> canary -> production -> archived, and the moves allowed between.

At most one version is in production. Promoting another archives it; ``archived -> production``
is allowed so that an old good version can be restored by hand, and ``rollback`` does the same in
one step for the previous production version.
"""

from __future__ import annotations

from enum import StrEnum

from recdrill.errors import StageError


class Stage(StrEnum):
    CANDIDATE = "candidate"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"


ALLOWED: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.CANARY, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.CANARY: frozenset({Stage.CANDIDATE, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.CANDIDATE, Stage.PRODUCTION}),
}


def parse_stage(text: str) -> Stage:
    """A stage by name, with an error listing the stages.

    Example:
        >>> parse_stage("canary")
        <Stage.CANARY: 'canary'>
    """
    try:
        return Stage(text)
    except ValueError:
        names = ", ".join(stage.value for stage in Stage)
        raise StageError(f"unknown stage {text!r}; choose one of {names}") from None


def validate_transition(version: str, current: Stage, target: Stage) -> None:
    """Raise :class:`StageError` unless ``current -> target`` is an allowed move."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(stage.value for stage in ALLOWED[current]))
        raise StageError(f"{version} is {current.value}: it can move to {allowed}, not {target.value}")
