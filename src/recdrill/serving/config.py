"""Serving configuration, passed to uvicorn workers through ``RECDRILL_*`` environment variables."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recdrill._params import validate_params
from recdrill.errors import ConfigError
from recdrill.security.keystore import ENV_KEY_STORE, served_key_store_path

ENV_MODEL = "RECDRILL_MODEL"
ENV_STATE_DIR = "RECDRILL_STATE_DIR"
ENV_DEADLINE_MS = "RECDRILL_DEADLINE_MS"
ENV_ADMIN_KEY = "RECDRILL_ADMIN_KEY"
ENV_FALLBACK_MODEL = "RECDRILL_FALLBACK_MODEL"
ENV_MODEL_VERSION = "RECDRILL_MODEL_VERSION"
ENV_OBSERVERS = "RECDRILL_OBSERVERS"
ENV_REQUIRE_SIGNED = "RECDRILL_REQUIRE_SIGNED"


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "on", "true", "yes"}:
        return True
    if lowered in {"0", "off", "false", "no"}:
        return False
    raise ValueError(value)


# Tuning knobs: field -> (variable, parser, what the parser accepts). Defaults: see ``ServeConfig``.
_KNOBS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "max_in_flight": ("RECDRILL_MAX_IN_FLIGHT", int, "an integer"),
    "admission_wait_ms": ("RECDRILL_ADMISSION_WAIT_MS", float, "a number"),
    "batching": ("RECDRILL_BATCHING", _parse_bool, "on or off"),
    "batch_max": ("RECDRILL_BATCH_MAX", int, "an integer"),
    "batch_wait_ms": ("RECDRILL_BATCH_WAIT_MS", float, "a number"),
    "inline_below_ms": ("RECDRILL_INLINE_BELOW_MS", float, "a number"),
    "cache_users": ("RECDRILL_CACHE_USERS", int, "an integer"),
    "cache_ttl_s": ("RECDRILL_CACHE_TTL_S", float, "a number"),
    "breaker_open_s": ("RECDRILL_BREAKER_OPEN_S", float, "a number"),
    "breaker_min_calls": ("RECDRILL_BREAKER_MIN_CALLS", int, "an integer"),
    "key_rate_per_s": ("RECDRILL_KEY_RATE_PER_S", float, "a number"),
    "key_burst": ("RECDRILL_KEY_BURST", int, "an integer"),
    "max_body_bytes": ("RECDRILL_MAX_BODY_BYTES", int, "an integer"),
    "body_timeout_s": ("RECDRILL_BODY_TIMEOUT_S", float, "a number"),
    "header_timeout_s": ("RECDRILL_HEADER_TIMEOUT_S", float, "a number"),
    "keep_alive_s": ("RECDRILL_KEEP_ALIVE_S", float, "a number"),
    "max_connections": ("RECDRILL_MAX_CONNECTIONS", int, "an integer"),
    "feedback_past_s": ("RECDRILL_FEEDBACK_PAST_S", float, "a number"),
    "feedback_future_s": ("RECDRILL_FEEDBACK_FUTURE_S", float, "a number"),
    "loop_stall_ms": ("RECDRILL_LOOP_STALL_MS", float, "a number"),
}


@dataclass(frozen=True)
class ServeConfig:
    """Where the model and the serving state live, the request deadline, the admin key's hash,
    and the knobs of the resilient request path.

    Only the SHA-256 of the admin key is kept, so the key itself never sits in the app's state.

    Parameters:
        fallback_model_dir: the fallback (item-to-item) model; when None, ``<model_dir>/fallback``
            is used if it exists, else there is no fallback tier.
        max_in_flight: ``/v1/recommend`` requests one worker handles at once; more get a 429. By
            Little's law the queue it allows costs ``max_in_flight / throughput``: 16 at ~1,000
            answers/s is ~16 ms, well inside the primary's share of the 50 ms deadline, while still
            letting the micro-batcher fill batches.
        admission_wait_ms: how long a request beyond ``max_in_flight`` may wait for a slot before
            its 429. A burst (a client's catch-up, a retry wave after a worker dies) then queues for
            a few milliseconds instead of being refused, while sustained overload is still shed,
            each refusal at most this late.
        batching, batch_max, batch_wait_ms: micro-batching of model calls (see ``batching.py``).
        inline_below_ms: a model whose batches recently took less than this is called on the event
            loop rather than in the worker thread (``batching.py``); 0 keeps every call in the thread.
        cache_users, cache_ttl_s: size and time-to-live of the last-good cache per worker.
        breaker_open_s, breaker_min_calls: circuit breaker cool-down and minimum calls to trip.
        key_store: the API-key store to enforce (``recdrill.security``); None: reader and writer
            endpoints are open. ``from_env`` takes ``RECDRILL_KEY_STORE``, else
            ``RECDRILL_HOME/keys.db`` when it exists.
        key_rate_per_s, key_burst: each API key's default token bucket, per worker.
        model_version: a registry version (``RECDRILL_MODEL_VERSION``) to serve instead of
            ``model_dir``: each worker verifies it in the registry of ``RECDRILL_HOME`` and decrypts
            it into ``<state_dir>/models/<version>/`` at start-up, and a start-up refusal stops the
            worker; a reload without a body returns to it.
        require_signed: serve only registry versions that verify (``recdrill serve --require-signed``,
            ``RECDRILL_REQUIRE_SIGNED``): it needs ``model_version`` and allows no
            ``fallback_model_dir`` (a version's own ``fallback/`` is verified with it), and the
            workers refuse a reload of a plain folder (422, reason ``unsigned``).
        observers: import specs (``module:factory``) of traffic observers each worker starts
            (``observers.py``); ``recdrill serve`` adds the live drift monitor unless ``--no-monitor``.
        max_body_bytes: the largest request body accepted (1 MiB); a larger one gets a 413 before
            it is read (its declared length) or as soon as it passes the limit (chunked).
        body_timeout_s: a body must have arrived this long after its headers, else 408: a client
            trickling a body holds a coroutine, never an admission slot, and not for long.
        header_timeout_s: a connection must complete a request's headers this long after it opened
            (or after its previous answer), else it is closed (``runtime/protocol.py``).
        keep_alive_s: an idle keep-alive connection is closed after this (uvicorn's
            ``timeout_keep_alive``).
        max_connections: connections (and requests in progress) per worker; beyond, uvicorn answers
            503 (its ``limit_concurrency``). Far above ``max_in_flight``: slow clients are cut by the
            timeouts, not by this cap, which only bounds a flood's file descriptors and memory.
        feedback_past_s, feedback_future_s: a feedback ``ts`` must lie within this window around
            the server's clock (30 days back, 5 minutes ahead), else 422 naming the field.
        loop_stall_ms: an event loop held this long is a stall: counted, and the loop thread's
            stack logged (``loop_watch.py``).
    """

    model_dir: Path
    state_dir: Path
    deadline_ms: float = 50.0
    admin_key_sha256: str | None = None
    fallback_model_dir: Path | None = None
    max_in_flight: int = 16
    admission_wait_ms: float = 25.0
    batching: bool = True
    batch_max: int = 16
    batch_wait_ms: float = 1.0
    inline_below_ms: float = 2.0
    cache_users: int = 10_000
    cache_ttl_s: float = 600.0
    breaker_open_s: float = 3.0
    breaker_min_calls: int = 20
    key_store: Path | None = None
    key_rate_per_s: float = 100.0
    key_burst: int = 200
    model_version: str | None = None
    require_signed: bool = False
    observers: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 1024
    feedback_past_s: float = 30 * 86_400.0
    feedback_future_s: float = 300.0
    loop_stall_ms: float = 250.0

    def __post_init__(self) -> None:
        checks = {
            "deadline_ms": (self.deadline_ms, self.deadline_ms > 0, "positive"),
            "max_in_flight": (self.max_in_flight, self.max_in_flight >= 1, "an int >= 1"),
            "admission_wait_ms": (self.admission_wait_ms, self.admission_wait_ms >= 0, ">= 0"),
            "batch_max": (self.batch_max, self.batch_max >= 1, "an int >= 1"),
            "batch_wait_ms": (self.batch_wait_ms, self.batch_wait_ms >= 0, ">= 0"),
            "inline_below_ms": (self.inline_below_ms, self.inline_below_ms >= 0, ">= 0"),
            "cache_users": (self.cache_users, self.cache_users >= 1, "an int >= 1"),
            "cache_ttl_s": (self.cache_ttl_s, self.cache_ttl_s > 0, "positive"),
            "breaker_open_s": (self.breaker_open_s, self.breaker_open_s >= 0, ">= 0"),
            "breaker_min_calls": (self.breaker_min_calls, self.breaker_min_calls >= 1, "an int >= 1"),
            "key_rate_per_s": (self.key_rate_per_s, self.key_rate_per_s > 0, "positive"),
            "key_burst": (self.key_burst, self.key_burst >= 1, "an int >= 1"),
            "max_body_bytes": (self.max_body_bytes, self.max_body_bytes >= 1024, "an int >= 1024"),
            "body_timeout_s": (self.body_timeout_s, self.body_timeout_s > 0, "positive"),
            "header_timeout_s": (self.header_timeout_s, self.header_timeout_s > 0, "positive"),
            "keep_alive_s": (self.keep_alive_s, self.keep_alive_s > 0, "positive"),
            "max_connections": (self.max_connections, self.max_connections >= 1, "an int >= 1"),
            "feedback_past_s": (self.feedback_past_s, self.feedback_past_s > 0, "positive"),
            "feedback_future_s": (self.feedback_future_s, self.feedback_future_s >= 0, ">= 0"),
            "loop_stall_ms": (self.loop_stall_ms, self.loop_stall_ms > 0, "positive"),
        }
        validate_params("ServeConfig", checks)
        if self.require_signed:
            validate_signed_only(self.model_version, self.fallback_model_dir)

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeConfig:
        env = os.environ if env is None else env
        version = env.get(ENV_MODEL_VERSION) or None
        try:
            require_signed = _parse_bool(env.get(ENV_REQUIRE_SIGNED, "off"))
        except ValueError:
            raise ConfigError(
                f"{ENV_REQUIRE_SIGNED} must be on or off, got {env[ENV_REQUIRE_SIGNED]!r}"
            ) from None
        if ENV_MODEL not in env and version is None:
            raise ConfigError(
                f"neither {ENV_MODEL} nor {ENV_MODEL_VERSION} is set: which model should be served?"
            )
        knobs: dict[str, Any] = {}
        for name, (variable, parse, accepted) in {
            **_KNOBS,
            "deadline_ms": (ENV_DEADLINE_MS, float, "a number"),
        }.items():
            if variable in env:
                try:
                    knobs[name] = parse(env[variable])
                except ValueError:
                    raise ConfigError(f"{variable} must be {accepted}, got {env[variable]!r}") from None
        key = env.get(ENV_ADMIN_KEY)
        fallback = env.get(ENV_FALLBACK_MODEL)
        state_dir = Path(env.get(ENV_STATE_DIR, "recdrill-state"))
        return cls(
            # With only a version, its decrypted folder (where the workers will put it).
            model_dir=Path(env[ENV_MODEL]) if ENV_MODEL in env else state_dir / "models" / str(version),
            state_dir=state_dir,
            model_version=version,
            require_signed=require_signed,
            admin_key_sha256=cls.hash_key(key) if key else None,
            fallback_model_dir=Path(fallback) if fallback else None,
            key_store=served_key_store_path(env),
            observers=tuple(spec for spec in env.get(ENV_OBSERVERS, "").split(",") if spec),
            **knobs,
        )

    def to_env(self, admin_key: str | None) -> dict[str, str]:
        """Variables for the workers. Knobs left at their defaults are not written, so a knob set in
        the environment of ``recdrill serve`` (which has no flag for every knob) reaches the workers."""
        env = {
            ENV_MODEL: str(self.model_dir),
            ENV_STATE_DIR: str(self.state_dir),
            ENV_DEADLINE_MS: str(self.deadline_ms),
        }
        if self.fallback_model_dir is not None:
            env[ENV_FALLBACK_MODEL] = str(self.fallback_model_dir)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, (variable, _, _) in _KNOBS.items():
            value = getattr(self, name)
            if value != defaults[name]:
                env[variable] = ("on" if value else "off") if isinstance(value, bool) else str(value)
        if admin_key:
            env[ENV_ADMIN_KEY] = admin_key
        if self.key_store is not None:
            env[ENV_KEY_STORE] = str(self.key_store)
        if self.model_version is not None:
            env[ENV_MODEL_VERSION] = self.model_version
        if self.require_signed:
            env[ENV_REQUIRE_SIGNED] = "on"
        if self.observers:
            env[ENV_OBSERVERS] = ",".join(self.observers)
        return env


def validate_signed_only(model_version: str | None, fallback_model_dir: Path | None) -> None:
    """Refuse what a server that requires signed models cannot serve: a plain model folder.

    Raises:
        ConfigError: no registry version to serve, or a fallback folder given beside it.
    """
    if model_version is None:
        raise ConfigError(
            "--require-signed serves only registry versions that verify: give --registry-version "
            "VERSION, not --model FOLDER ('recdrill registry push FOLDER' registers a folder)"
        )
    if fallback_model_dir is not None:
        raise ConfigError(
            f"--require-signed serves only registry versions that verify, and the fallback "
            f"{fallback_model_dir} is a plain folder: leave out --fallback-model (a version's own "
            "fallback/ is signed and verified with it)"
        )
