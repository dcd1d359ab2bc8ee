"""ServeConfig: every knob round-trips through the workers' environment; bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from recdrill.errors import ConfigError
from recdrill.serving.config import ServeConfig


def test_knobs_round_trip_through_the_environment() -> None:
    config = ServeConfig(
        Path("m"),
        Path("s"),
        deadline_ms=80.0,
        fallback_model_dir=Path("knn"),
        max_in_flight=5,
        batching=False,
        batch_max=4,
        batch_wait_ms=0.5,
        cache_users=7,
        cache_ttl_s=9.0,
        breaker_open_s=1.5,
        breaker_min_calls=3,
    )
    env = config.to_env("key")
    assert env["RECDRILL_BATCHING"] == "off" and env["RECDRILL_MAX_IN_FLIGHT"] == "5"
    again = ServeConfig.from_env(env)
    assert again == ServeConfig(**{**config.__dict__, "admin_key_sha256": ServeConfig.hash_key("key")})


def test_knobs_at_their_defaults_leave_the_environment_alone() -> None:
    env = ServeConfig(Path("m"), Path("s")).to_env(None)
    assert set(env) == {"RECDRILL_MODEL", "RECDRILL_STATE_DIR", "RECDRILL_DEADLINE_MS"}
    # ... so a knob set by the operator (no CLI flag) still reaches the workers.
    from_operator = ServeConfig.from_env({**env, "RECDRILL_MAX_IN_FLIGHT": "3", "RECDRILL_BATCHING": "0"})
    assert from_operator.max_in_flight == 3 and from_operator.batching is False


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECDRILL_MAX_IN_FLIGHT", "many", "RECDRILL_MAX_IN_FLIGHT must be an integer, got 'many'"),
        ("RECDRILL_BATCHING", "maybe", "RECDRILL_BATCHING must be on or off, got 'maybe'"),
        ("RECDRILL_DEADLINE_MS", "soon", "RECDRILL_DEADLINE_MS must be a number, got 'soon'"),
        (
            "RECDRILL_MAX_IN_FLIGHT",
            "0",
            "The 'max_in_flight' parameter of ServeConfig must be an int >= 1, got 0",
        ),
        (
            "RECDRILL_CACHE_TTL_S",
            "-1",
            "The 'cache_ttl_s' parameter of ServeConfig must be positive, got -1.0",
        ),
    ],
)
def test_bad_values_name_the_variable_and_value(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        ServeConfig.from_env({"RECDRILL_MODEL": "m", variable: value})
    assert str(error.value) == message


def test_require_signed_round_trips_with_its_registry_version() -> None:
    config = ServeConfig(Path("s/models/v3"), Path("s"), model_version="v3", require_signed=True)
    env = config.to_env(None)
    assert env["RECDRILL_REQUIRE_SIGNED"] == "on" and env["RECDRILL_MODEL_VERSION"] == "v3"
    assert ServeConfig.from_env(env) == config
    assert "RECDRILL_REQUIRE_SIGNED" not in ServeConfig(Path("m"), Path("s")).to_env(None)
    with pytest.raises(ConfigError, match="RECDRILL_REQUIRE_SIGNED must be on or off, got 'sure'"):
        ServeConfig.from_env({**env, "RECDRILL_REQUIRE_SIGNED": "sure"})


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({}, "give --registry-version VERSION, not --model FOLDER"),
        ({"model_version": "v3", "fallback_model_dir": Path("knn")}, "the fallback knn is a plain folder"),
    ],
    ids=["no-version", "plain-fallback"],
)
def test_require_signed_refuses_a_plain_folder_to_serve(knobs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeConfig(Path("m"), Path("s"), require_signed=True, **knobs)  # type: ignore[arg-type]
