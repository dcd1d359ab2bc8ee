"""validate_params: the one parameter-check table and its one message format."""

from __future__ import annotations

import pytest

from recdrill._params import validate_params
from recdrill.errors import ConfigError
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.serving.breaker import BreakerConfig
from recdrill.serving.canary.judge import CanaryJudge
from recdrill.serving.config import ServeConfig


def test_the_first_failing_check_is_named_with_its_value() -> None:
    checks = {"a": (1, True, "anything"), "b": (-2, False, ">= 0"), "c": ("x", False, "a number")}
    with pytest.raises(ConfigError) as error:
        validate_params("Owner", checks)
    assert str(error.value) == "The 'b' parameter of Owner must be >= 0, got -2"


def test_passing_checks_raise_nothing_and_errors_are_value_errors() -> None:
    validate_params("Owner", {"a": (1, True, "anything")})
    with pytest.raises(ValueError, match="'a' parameter of Owner"):  # ConfigError is a ValueError
        validate_params("Owner", {"a": (None, False, "set")})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ItemKNNRecommender(neighbours=0)._validate_params(),
            "'neighbours' parameter of ItemKNNRecommender",
        ),
        (
            lambda: BreakerConfig(failure_rate=2.0),
            "'failure_rate' parameter of BreakerConfig must be in (0, 1]",
        ),
        (lambda: CanaryJudge(min_samples=1), "'min_samples' parameter of CanaryJudge must be an int >= 2"),
        (lambda: ServeConfig("m", "s", max_in_flight=0), "'max_in_flight' parameter of ServeConfig"),  # type: ignore[arg-type]
    ],
)
def test_every_owner_words_its_refusals_the_same_way(build: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        build()  # type: ignore[operator]
    assert message in str(error.value) and str(error.value).startswith("The '")
