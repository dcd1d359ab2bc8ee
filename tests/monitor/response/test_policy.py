"""The settings of the automatic drift response: documented defaults, and each bad value named."""

from __future__ import annotations

import dataclasses

import pytest

from recdrill.errors import ConfigError
from recdrill.monitor.response.policy import ResponsePolicy


def test_the_defaults_are_the_documented_ones() -> None:
    assert dataclasses.asdict(ResponsePolicy()) == {
        "sustain_s": 600.0,
        "recent_window_s": 604_800.0,
        "min_recent_events": 1_000,
        "holdout_share": 0.2,
        "min_holdout_users": 100,
        "min_gain": 0.02,
        "fine_tune_epochs": 10,
        "fine_tune_minutes": 10.0,
        "fine_tune_lr_scale": 1.0,
        "recent_weight": 2,
        "canary_percent": 10.0,
        "auto_promote": True,
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("sustain_s", -1.0, ">= 0"),
        ("recent_window_s", 0.0, "> 0"),
        ("min_recent_events", 0, "an int >= 1"),
        ("holdout_share", 0.0, r"in \(0, 1\)"),
        ("holdout_share", 1.0, r"in \(0, 1\)"),
        ("min_holdout_users", 0, "an int >= 1"),
        ("min_gain", float("inf"), "a finite number"),
        ("min_gain", float("nan"), "a finite number"),
        ("fine_tune_epochs", 0, "an int >= 1"),
        ("fine_tune_minutes", 0.0, "> 0"),
        ("fine_tune_lr_scale", -0.5, "> 0"),
        ("recent_weight", 0, "an int >= 1"),
        ("canary_percent", 0.0, r"in \(0, 100\]"),
        ("canary_percent", 100.5, r"in \(0, 100\]"),
    ],
)
def test_a_bad_setting_is_named_with_what_it_must_be(name: str, value: float, expected: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"The '{name}' parameter of ResponsePolicy must be {expected}, got "
    ):
        ResponsePolicy(**{name: value})  # type: ignore[arg-type]


def test_the_boundaries_that_are_allowed() -> None:
    policy = ResponsePolicy(sustain_s=0.0, canary_percent=100.0, min_gain=-1.0, holdout_share=0.999)
    assert (policy.sustain_s, policy.canary_percent, policy.min_gain) == (0.0, 100.0, -1.0)


def test_a_policy_is_frozen_and_replace_checks_again() -> None:
    policy = ResponsePolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.min_gain = 0.5  # type: ignore[misc]
    assert dataclasses.replace(policy, min_gain=0.5).min_gain == 0.5
    with pytest.raises(
        ConfigError, match="'recent_weight' parameter of ResponsePolicy must be an int >= 1, got 0"
    ):
        dataclasses.replace(policy, recent_weight=0)
