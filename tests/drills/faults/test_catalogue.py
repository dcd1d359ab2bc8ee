"""The fault catalogue: lookup, order, parameter errors, describe() and registration."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import Field, ValidationError

from recdrill.drills.faults import catalogue as catalogue_module
from recdrill.drills.faults.catalogue import (
    FAULT_MODULES,
    FaultParams,
    FaultType,
    Need,
    NoParams,
    catalogue,
    fault_type,
    register,
)
from recdrill.drills.target import NEED_HELP, DrillTarget
from recdrill.errors import ConfigError


def test_an_unknown_fault_lists_the_known_names() -> None:
    with pytest.raises(
        ConfigError, match=r"no fault named 'ranker-lag'; known faults: .*ranker-latency"
    ) as caught:
        fault_type("ranker-lag")
    known = str(caught.value).split("known faults: ")[1].split(", ")
    assert known == sorted(f.name for f in catalogue())


def test_the_catalogue_lists_infrastructure_first_then_by_name() -> None:
    faults = catalogue()
    kinds = [f.kind for f in faults]
    split = kinds.index("ml")
    assert set(kinds[:split]) == {"infrastructure"} and set(kinds[split:]) == {"ml"}
    for part in (faults[:split], faults[split:]):
        assert [f.name for f in part] == sorted(f.name for f in part)
    assert len({f.name for f in faults}) == len(faults)
    assert all(fault_type(f.name) is f for f in faults)


def test_every_fault_comes_from_a_listed_module_and_every_module_registers_one() -> None:
    origins = {f.inject.__module__.rsplit(".", 1)[-1] for f in catalogue()}
    assert origins == {module.rsplit(".", 1)[-1] for module in FAULT_MODULES}


def test_every_need_is_one_a_target_can_be_asked_for() -> None:
    for ftype in catalogue():
        assert ftype.needs <= set(get_args(Need)) == set(NEED_HELP), ftype.name
        assert ftype.summary and ftype.effect, ftype.name
        assert issubclass(ftype.params, FaultParams), ftype.name


def test_parse_fills_defaults_and_coerces_values() -> None:
    ftype = fault_type("ranker-latency")
    assert ftype.parse(None).model_dump() == {"rate": 1.0, "ttl_s": 600.0, "latency_ms": 250.0}
    parsed = ftype.parse({"latency_ms": 40, "rate": 0.5})
    assert (parsed.latency_ms, parsed.rate) == (40.0, 0.5)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"latency": 40}, "fault 'ranker-latency': latency: Extra inputs are not permitted"),
        ({"latency_ms": 0}, "fault 'ranker-latency': latency_ms: Input should be greater than 0"),
        ({"rate": 1.5}, "fault 'ranker-latency': rate: Input should be less than or equal to 1"),
        ({"ttl_s": "soon"}, "fault 'ranker-latency': ttl_s: Input should be a valid number"),
    ],
)
def test_bad_parameters_name_the_fault_and_the_parameter(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        fault_type("ranker-latency").parse(raw)


def test_parsed_parameters_are_frozen() -> None:
    parsed = fault_type("worker-kill").parse({"worker": 1})
    with pytest.raises(ValidationError, match="frozen"):
        parsed.worker = 2  # type: ignore[attr-defined]


def test_no_params_takes_nothing() -> None:
    assert NoParams.model_validate({}).model_dump() == {}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        NoParams.model_validate({"x": 1})


def test_describe_gives_types_defaults_and_bounds() -> None:
    described = fault_type("ranker-latency").describe()
    assert {k: described[k] for k in ("name", "kind", "needs")} == {
        "name": "ranker-latency",
        "kind": "ml",
        "needs": [],
    }
    assert described["params"]["latency_ms"] == {
        "type": "number",
        "default": 250.0,
        "description": "added to each call hit",
        "maximum": 60000,
        "exclusiveMinimum": 0,
    }
    assert described["params"]["rate"]["minimum"] == 0 and described["params"]["rate"]["maximum"] == 1
    assert fault_type("unsigned-artifact").describe()["needs"] == ["local", "model_dir"]  # sorted


def test_describe_joins_the_types_of_an_optional_parameter() -> None:
    params = fault_type("bad-model-push").describe()["params"]
    assert params["model_dir"]["type"] == "string | null" and params["model_dir"]["default"] is None
    assert params["seed"]["maximum"] == 2**31 - 1


def test_registering_the_same_fault_again_keeps_the_first() -> None:
    known = fault_type("ranker-error")
    again = FaultType(known.name, known.kind, "another summary", known.params, known.inject, known.revert)
    assert register(again) is known
    assert fault_type("ranker-error") is known


def test_a_different_fault_under_a_known_name_is_refused() -> None:
    def inject(target: DrillTarget, params: NoParams) -> None:
        return None

    clash = FaultType("ranker-error", "ml", "clash", NoParams, inject, lambda t, p, h: None)
    with pytest.raises(ValueError, match="fault type 'ranker-error' is registered twice"):
        register(clash)


class ToyParams(FaultParams):
    level: int = Field(1, ge=1, le=3)


def toy_inject(target: DrillTarget, params: ToyParams) -> int:
    return params.level


def test_a_new_fault_type_joins_the_catalogue() -> None:
    toy = FaultType("zz-test-toy", "ml", "a toy", ToyParams, toy_inject, lambda t, p, h: {"level": h})
    try:
        assert register(toy) is toy
        assert fault_type("zz-test-toy") is toy and catalogue()[-1] is toy  # ml, last by name
        with pytest.raises(ConfigError, match="fault 'zz-test-toy': level: Input should be less than"):
            toy.parse({"level": 4})
        target = DrillTarget("http://127.0.0.1:9", "key")
        handle = toy.inject(target, toy.parse({"level": 2}))
        assert toy.revert(target, toy.parse({}), handle) == {"level": 2}
    finally:
        catalogue_module._REGISTRY.pop("zz-test-toy", None)
    with pytest.raises(ConfigError, match="no fault named 'zz-test-toy'"):
        fault_type("zz-test-toy")
