"""Settings of the synthetic shop: its size, calendar, search share, seed and drift knobs.

Both configs are frozen and check every field when built, raising :class:`~recdrill.errors.ConfigError`
with the field and the bad value, e.g. ``ShopSimConfig.n_items must be a positive integer, got -3``.

Example:
    >>> config = ShopSimConfig(n_items=500, n_users=300, n_events=5_000, drift=DriftConfig(new_items=0.1))
    >>> config.n_leaves, config.drift_time - config.start_date == int(0.8 * 30 * 86_400)
    (40, True)
    >>> ShopSimConfig(days=0)
    Traceback (most recent call last):
    ...
    recdrill.errors.ConfigError: ShopSimConfig.days must be a positive integer, got 0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from typing import Any

from recdrill.data.shopsim.vocab import MAX_BRANDS, MAX_SUBCATEGORIES, MAX_TOP_CATEGORIES
from recdrill.errors import ConfigError

SECONDS_PER_DAY = 86_400
START_DATE = 1_790_812_800  # 2026-10-01 00:00:00 UTC, a Thursday
MIN_EVENTS_PER_USER = 5  # leave-one-out needs 3; 5 leaves a history to learn from as well


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but ``n_items=True`` is a mistake, not a count.
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value > 0


def _fraction(value: Any) -> bool:
    return _is_real(value) and 0.0 <= value <= 1.0


# (field name, predicate, what a valid value is): the table every config is checked against.
Check = tuple[str, Callable[[Any], bool], str]


def _validate(owner: object, checks: tuple[Check, ...]) -> None:
    for name, is_ok, expected in checks:
        value = getattr(owner, name)
        if not is_ok(value):
            raise ConfigError(f"{type(owner).__name__}.{name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class DriftConfig:
    """What changes in the shop after a point in time; every knob is off by default.

    Attributes:
        start: fraction of the timeline after which drift applies, in ``(0, 1)``.
        new_items: fraction of items that only exist (are only sampled) after ``start``, in
            ``[0, 1)``; every leaf category keeps at least one old item, which caps the count.
        price_shock: price multiplier applied after ``start`` to the shocked leaf categories.
        price_shock_share: fraction of leaf categories shocked (at least one when above 0).
        taste_shift: in ``[0, 1]``; how far users' category tastes move toward a new random taste
            (drawn around a reshuffled category popularity, so the shop's category mix moves too).

    Example:
        >>> DriftConfig(price_shock=1.5).price_shock_share
        0.25
    """

    start: float = 0.8
    new_items: float = 0.0
    price_shock: float = 1.0
    price_shock_share: float = 0.25
    taste_shift: float = 0.0

    def __post_init__(self) -> None:
        _validate(self, _DRIFT_CHECKS)

    @property
    def is_active(self) -> bool:
        """Whether any knob changes the shop."""
        return (
            self.new_items > 0
            or (self.price_shock != 1.0 and self.price_shock_share > 0)
            or (self.taste_shift > 0)
        )


_DRIFT_CHECKS: tuple[Check, ...] = (
    ("start", lambda v: _is_real(v) and 0.0 < v < 1.0, "a number strictly between 0 and 1"),
    ("new_items", lambda v: _is_real(v) and 0.0 <= v < 1.0, "a number in [0, 1)"),
    ("price_shock", lambda v: _is_real(v) and v > 0, "a positive number"),
    ("price_shock_share", _fraction, "a number in [0, 1]"),
    ("taste_shift", _fraction, "a number in [0, 1]"),
)


@dataclass(frozen=True)
class ShopSimConfig:
    """Size, calendar and behaviour of a synthetic shop.

    Attributes:
        n_items, n_users, n_events: catalogue size, number of users and exact number of events;
            every user gets at least 5 events, so ``n_events >= 5 * n_users``.
        n_top_categories: top categories (at most 12, named Beauty, Toys, Kitchen, ...).
        n_subcategories: leaf categories per top category (at most 6).
        n_brands: brands (at least one per top category, at most 3,600).
        days: length of the timeline starting at ``start_date`` (epoch seconds, UTC).
        promotion_day: day index (0-based) with a traffic surge, or ``None``.
        promotion_surge: that day's sessions relative to a normal day (>= 1).
        search_share: share of sessions that start with a search query.
        seed: the only source of randomness; the same config gives the same shop.
        drift: what changes after ``drift.start``.

    Example:
        >>> ShopSimConfig(n_users=10, n_events=40)
        Traceback (most recent call last):
        ...
        recdrill.errors.ConfigError: ShopSimConfig.n_events must be at least 5 * n_users = 50, got 40
    """

    n_items: int = 10_000
    n_users: int = 20_000
    n_events: int = 500_000
    n_top_categories: int = 8
    n_subcategories: int = 5
    n_brands: int = 300
    days: int = 30
    start_date: int = START_DATE
    promotion_day: int | None = 24
    promotion_surge: float = 5.0
    search_share: float = 0.3
    seed: int = 0
    drift: DriftConfig = field(default_factory=DriftConfig)

    def __post_init__(self) -> None:
        _validate(self, _SIZE_CHECKS)
        # These bounds depend on other fields, so they are checked once those are known to be valid.
        _validate(self, (
            ("n_items", lambda v: v >= self.n_leaves,
             f"at least one per leaf category ({self.n_leaves})"),
            ("n_brands", lambda v: v >= self.n_top_categories,
             f"at least n_top_categories ({self.n_top_categories})"),
            ("n_events", lambda v: v >= MIN_EVENTS_PER_USER * self.n_users,
             f"at least {MIN_EVENTS_PER_USER} * n_users = {MIN_EVENTS_PER_USER * self.n_users}"),
            ("promotion_day", lambda v: v is None or (_is_int(v) and 0 <= v < self.days),
             f"None or a day index in [0, {self.days})"),
        ))  # fmt: skip

    @property
    def n_leaves(self) -> int:
        """Number of leaf categories."""
        return self.n_top_categories * self.n_subcategories

    @property
    def end_date(self) -> int:
        """Epoch second at which the timeline ends (sessions started before it may run a little past)."""
        return self.start_date + self.days * SECONDS_PER_DAY

    @property
    def drift_time(self) -> int:
        """Epoch second from which drift applies."""
        return self.start_date + int(self.drift.start * self.days * SECONDS_PER_DAY)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names accepted as overrides by :class:`~recdrill.data.shopsim.ShopSim`."""
        return tuple(f.name for f in fields(cls))


_SIZE_CHECKS: tuple[Check, ...] = (
    ("n_items", _positive_int, "a positive integer"),
    ("n_users", _positive_int, "a positive integer"),
    ("n_events", _positive_int, "a positive integer"),
    ("n_top_categories", lambda v: _is_int(v) and 1 <= v <= MAX_TOP_CATEGORIES,
     f"an integer in [1, {MAX_TOP_CATEGORIES}]"),
    ("n_subcategories", lambda v: _is_int(v) and 1 <= v <= MAX_SUBCATEGORIES,
     f"an integer in [1, {MAX_SUBCATEGORIES}]"),
    ("n_brands", lambda v: _is_int(v) and 1 <= v <= MAX_BRANDS,
     f"an integer in [1, {MAX_BRANDS}]"),
    ("days", _positive_int, "a positive integer"),
    ("start_date", lambda v: _is_int(v) and v >= 0, "a non-negative integer (epoch seconds)"),
    ("promotion_surge", lambda v: _is_real(v) and v >= 1.0, "a number >= 1"),
    ("search_share", _fraction, "a number in [0, 1]"),
    ("seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("drift", lambda v: isinstance(v, DriftConfig), "a DriftConfig"),
)  # fmt: skip
