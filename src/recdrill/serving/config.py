"""Serving configuration, passed to uvicorn workers through ``RECDRILL_*`` environment variables."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from recdrill.errors import ConfigError

ENV_MODEL = "RECDRILL_MODEL"
ENV_STATE_DIR = "RECDRILL_STATE_DIR"
ENV_DEADLINE_MS = "RECDRILL_DEADLINE_MS"
ENV_ADMIN_KEY = "RECDRILL_ADMIN_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Where the model and the serving state live, the request deadline, and the admin key's hash.

    Only the SHA-256 of the admin key is kept, so the key itself never sits in the app's state.
    """

    model_dir: Path
    state_dir: Path
    deadline_ms: float = 50.0
    admin_key_sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.deadline_ms > 0:
            raise ConfigError(f"deadline_ms must be positive, got {self.deadline_ms}")

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeConfig:
        env = os.environ if env is None else env
        if ENV_MODEL not in env:
            raise ConfigError(f"{ENV_MODEL} is not set: which model folder should be served?")
        try:
            deadline = float(env.get(ENV_DEADLINE_MS, "50"))
        except ValueError:
            raise ConfigError(f"{ENV_DEADLINE_MS} must be a number, got {env[ENV_DEADLINE_MS]!r}") from None
        key = env.get(ENV_ADMIN_KEY)
        return cls(
            model_dir=Path(env[ENV_MODEL]),
            state_dir=Path(env.get(ENV_STATE_DIR, "recdrill-state")),
            deadline_ms=deadline,
            admin_key_sha256=cls.hash_key(key) if key else None,
        )

    def to_env(self, admin_key: str | None) -> dict[str, str]:
        env = {
            ENV_MODEL: str(self.model_dir),
            ENV_STATE_DIR: str(self.state_dir),
            ENV_DEADLINE_MS: str(self.deadline_ms),
        }
        if admin_key:
            env[ENV_ADMIN_KEY] = admin_key
        return env
