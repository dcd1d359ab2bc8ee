"""recdrill._lazy: names imported on first use, and every lazy package's _EXPORTS matching __all__."""

from __future__ import annotations

import importlib
import json.decoder
import pkgutil
import types

import pytest

import recdrill
from recdrill._lazy import lazy_getattr


def lazy_packages() -> list[str]:
    """Every package under recdrill whose ``__getattr__`` comes from ``lazy_getattr``."""
    found = []
    for info in pkgutil.walk_packages(recdrill.__path__, "recdrill."):
        if not info.ispkg:
            continue
        package = importlib.import_module(info.name)
        getter = vars(package).get("__getattr__")
        if getter is not None and getter.__qualname__.startswith("lazy_getattr."):
            found.append(info.name)
    return found


LAZY = lazy_packages()


def test_the_getter_imports_the_submodule_and_caches_the_name() -> None:
    namespace: dict[str, object] = {}
    getter = lazy_getattr("json", {"JSONDecoder": "decoder", "scanstring": "decoder"}, namespace)
    assert getter("JSONDecoder") is json.decoder.JSONDecoder
    assert namespace == {"JSONDecoder": json.decoder.JSONDecoder}  # later lookups skip the getter
    assert getter("scanstring") is json.decoder.scanstring
    assert set(namespace) == {"JSONDecoder", "scanstring"}


def test_an_unknown_name_is_an_attribute_error_naming_package_and_name() -> None:
    namespace: dict[str, object] = {}
    getter = lazy_getattr("json", {"JSONDecoder": "decoder"}, namespace)
    with pytest.raises(AttributeError, match=r"module 'json' has no attribute 'JSONEncoder'"):
        getter("JSONEncoder")
    assert namespace == {}


def test_a_name_its_submodule_lacks_is_an_attribute_error() -> None:
    getter = lazy_getattr("json", {"NoSuchThing": "decoder"}, {})
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getter("NoSuchThing")


def test_a_lazy_package_answers_hasattr_and_from_import_like_a_plain_one() -> None:
    drills = importlib.import_module("recdrill.drills")
    assert not hasattr(drills, "no_such_name")
    from recdrill.drills import DrillTarget
    from recdrill.drills.target import DrillTarget as direct

    assert DrillTarget is direct
    assert vars(drills)["DrillTarget"] is direct  # cached in the package after the first use


def test_the_lazy_packages_are_found() -> None:
    assert {"recdrill.drills", "recdrill.drills.faults"} <= set(LAZY)


@pytest.mark.parametrize("name", LAZY)
def test_exports_and_all_list_the_same_names_once(name: str) -> None:
    package = importlib.import_module(name)
    exports = vars(package)["_EXPORTS"]
    listed = list(package.__all__)
    assert len(listed) == len(set(listed)), f"{name}.__all__ repeats a name"
    assert set(exports) == set(listed), (
        f"{name}: only in _EXPORTS {sorted(set(exports) - set(listed))}, "
        f"only in __all__ {sorted(set(listed) - set(exports))}"
    )


@pytest.mark.parametrize("name", LAZY)
def test_every_exported_name_resolves_to_its_submodules_object(name: str) -> None:
    package = importlib.import_module(name)
    for export, submodule in vars(package)["_EXPORTS"].items():
        module = importlib.import_module(f"{name}.{submodule}")
        assert isinstance(module, types.ModuleType)
        assert getattr(package, export) is getattr(module, export), f"{name}.{export}"
