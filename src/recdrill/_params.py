"""Parameter checks declared as a table, with one message format for every owner (scikit-learn's).

Example:
    >>> validate_params("Knob", {"size": (0, False, "an int >= 1")})
    Traceback (most recent call last):
    ...
    recdrill.errors.ConfigError: The 'size' parameter of Knob must be an int >= 1, got 0
"""

from __future__ import annotations

from collections.abc import Mapping

from recdrill.errors import ConfigError

# name -> (the value given, whether it is acceptable, what is accepted, in words)
Checks = Mapping[str, tuple[object, bool, str]]


def validate_params(owner: str, checks: Checks) -> None:
    """Raise a :class:`ConfigError` naming the first parameter of ``owner`` whose check fails.

    Raises:
        ConfigError: "The 'NAME' parameter of OWNER must be EXPECTED, got VALUE".
    """
    for name, (value, ok, expected) in checks.items():
        if not ok:
            raise ConfigError(f"The {name!r} parameter of {owner} must be {expected}, got {value!r}")
