"""recdrill.errors: the drawn tree and exit codes are the real ones; no exception outside it."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import recdrill
from recdrill import errors
from recdrill.errors import (
    ArtifactRefusedError,
    DataFileNotFoundError,
    DataFormatError,
    DataSchemaError,
    DecryptionError,
    ModelFileError,
    NotFittedError,
    RayNotInstalledError,
    RecdrillError,
)

INTERNAL_SIGNALS = {
    "TierSkip",
    "InvalidAnswerError",
    "InjectedFaultError",
    "CiphertextError",
    "SignedContentMismatch",
    "StopServing",
    "BodyTooLarge",
}
_NAME = re.compile(r"[A-Z][A-Za-z]+")


@dataclass(frozen=True)
class Node:
    name: str
    parent: str | None
    builtin_base: str | None
    exit_code: int | None  # as drawn; None: the parent's


def drawn_tree() -> list[Node]:
    """The hierarchy drawn in the module docstring, one node per class named, in order."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    nodes: list[Node] = []
    at_depth: dict[int, str] = {}
    for line in block.splitlines():
        name_at = re.search(r"[A-Z]", line)
        assert name_at is not None, line
        depth = (name_at.start() - 4) // 4
        text = line[name_at.start() :]
        names_part = re.match(r"([A-Z]\w*(?:, [A-Z]\w*)*),?", text)
        assert names_part is not None, line
        rest = text[names_part.end() :]
        base = re.match(r"\s*\((\w+)\)", rest)
        code = re.search(r"\(exit (\d+)\)\s*$", line)
        parent = at_depth.get(depth - 1)
        for name in names_part.group(1).split(", "):
            nodes.append(
                Node(name, parent, base.group(1) if base else None, int(code.group(1)) if code else None)
            )
            at_depth[depth] = name
    return nodes


TREE = drawn_tree()


def defined_here() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__
    }


def test_the_drawing_is_read_whole() -> None:
    names = [node.name for node in TREE]
    assert names[0] == "RecdrillError" and TREE[0].parent is None and TREE[0].exit_code == 1
    assert len(names) == len(set(names))
    assert {"DecryptionError", "DrillAborted", "UnsignedArtifactError", "RayNotInstalledError"} <= set(names)


def test_every_class_defined_is_drawn_and_every_drawn_class_exists() -> None:
    assert {node.name for node in TREE} == set(defined_here())


def test_every_error_derives_from_recdrill_error_with_an_int_exit_code() -> None:
    for name, cls in defined_here().items():
        assert issubclass(cls, RecdrillError), name
        assert type(cls.exit_code) is int, name


@pytest.mark.parametrize("node", TREE, ids=lambda n: n.name)
def test_each_class_sits_where_the_drawing_puts_it(node: Node) -> None:
    cls = getattr(errors, node.name)
    if node.parent is not None:
        assert getattr(errors, node.parent) in cls.__bases__, f"{node.name} should derive from {node.parent}"
    if node.builtin_base is not None:
        assert issubclass(cls, getattr(builtins, node.builtin_base)), node.name


def expected_codes() -> dict[str, int]:
    codes: dict[str, int] = {}
    for node in TREE:
        inherited = codes[node.parent] if node.parent is not None else None
        code = node.exit_code if node.exit_code is not None else inherited
        assert code is not None, node.name
        codes[node.name] = code
    return codes


@pytest.mark.parametrize(("name", "code"), sorted(expected_codes().items()))
def test_exit_codes_are_the_drawn_ones_or_the_parents(name: str, code: int) -> None:
    assert getattr(errors, name).exit_code == code


def test_the_drawn_exit_codes_are_the_documented_ones() -> None:
    codes = expected_codes()
    assert (codes["ConfigError"], codes["KeyNameError"], codes["DataFileNotFoundError"]) == (2, 2, 3)
    assert (codes["DataFormatError"], codes["ArtifactRefusedError"], codes["DecryptionError"]) == (4, 7, 7)
    assert (codes["StageError"], codes["ProcessGoneError"], codes["DrillAborted"]) == (6, 8, 10)


# -- messages -----------------------------------------------------------------------------------------


def test_data_errors_name_the_file_and_line() -> None:
    assert str(DataFileNotFoundError("x/shop.csv")) == "x/shop.csv: no such file"
    assert DataFileNotFoundError("x/shop.csv").path == Path("x/shop.csv")
    error = DataFormatError("a.txt", "bad field", line=7)
    assert (str(error), error.line, error.problem) == ("a.txt:7: bad field", 7, "bad field")
    assert str(DataFormatError("a.txt", "empty")) == "a.txt: empty"
    assert str(DataSchemaError("t.parquet", "no column 'user'")) == "t.parquet: no column 'user'"
    with pytest.raises(ValueError, match="no such file"):  # input errors are ValueErrors too
        raise DataFileNotFoundError("gone.csv")


def test_model_and_artifact_errors_name_what_is_wrong() -> None:
    class Toy:
        pass

    assert str(NotFittedError(Toy())) == "This Toy is not fitted yet: call fit() before using it"
    assert isinstance(NotFittedError(Toy()), AttributeError)
    assert str(ModelFileError("m", "corrupt state")) == "m: corrupt state"
    assert str(ArtifactRefusedError("v3", "nope")) == "v3: refused (refused): nope"
    refused = DecryptionError("v4", "tag check failed")
    assert str(refused) == "v4: refused (wrong data key): tag check failed" and refused.version == "v4"
    assert str(RayNotInstalledError()) == "Ray Serve is not installed: pip install 'recdrill[ray]'"


# -- exceptions elsewhere -----------------------------------------------------------------------------


def _needs_ray(exc: ModuleNotFoundError) -> bool:
    return (exc.name or "").split(".")[0] == "ray"


def exception_classes_elsewhere() -> dict[str, type[BaseException]]:
    """Exception classes defined in any recdrill module but recdrill.errors, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(recdrill.__path__, "recdrill."):
        if info.name.endswith(".__main__") or info.name == errors.__name__:
            continue  # __main__ runs the CLI when imported
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if _needs_ray(exc):
                continue
            raise
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_no_module_defines_an_exception_outside_the_tree_but_the_internal_signals() -> None:
    foreign = {
        qualified: cls
        for qualified, cls in exception_classes_elsewhere().items()
        if issubclass(cls, Exception) and not issubclass(cls, RecdrillError)
    }
    assert {qualified.rsplit(".", 1)[1] for qualified in foreign} <= INTERNAL_SIGNALS, sorted(foreign)


def test_the_internal_signals_exist_where_the_docstring_says() -> None:
    where = {
        "TierSkip": "recdrill.serving.tiers",
        "InvalidAnswerError": "recdrill.serving.tiers",
        "InjectedFaultError": "recdrill.serving.fault_points",
        "CiphertextError": "recdrill.registry.encryption",
        "SignedContentMismatch": "recdrill.registry.signing",
    }
    for name, module in where.items():
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Exception) and not issubclass(cls, RecdrillError), name
    assert issubclass(
        importlib.import_module("recdrill.serving.fault_points").InjectedFaultError, RuntimeError
    )
    assert issubclass(importlib.import_module("recdrill.registry.encryption").CiphertextError, ValueError)
