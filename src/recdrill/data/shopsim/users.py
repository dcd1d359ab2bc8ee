"""The synthetic shop's users: category tastes, price sensitivity and how active each one is.

Tastes are Dirichlet draws over leaf categories with small concentration, so each user cares about a
few categories. After the drift time a user's taste moves ``taste_shift`` of the way toward a second
draw made around a reshuffled category popularity, so individual users and the shop's overall
category mix both change. Activity is lognormal (a few users are very heavy); every user gets at
least five events and the counts add up to exactly ``n_events``.

Example:
    >>> import numpy as np
    >>> from recdrill.data.shopsim.config import ShopSimConfig
    >>> users = build_users(ShopSimConfig(n_users=100, n_events=2_000), np.random.default_rng(0))
    >>> int(users.n_events.sum()), int(users.n_events.min()) >= 5, users.taste.shape
    (2000, True, (2, 100, 40))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.shopsim.catalog import numbered_ids
from recdrill.data.shopsim.config import MIN_EVENTS_PER_USER, ShopSimConfig

TASTE_CONCENTRATION = 0.2  # mean Dirichlet alpha per leaf: most of a user's taste sits on a few leaves
ACTIVITY_SPREAD = 1.0  # sd of log activity: heavy-tailed events per user
# Price sensitivity is drawn continuously (it sets conversion) and rounded to one of these levels
# to choose items, so item choice needs one precomputed distribution per level, not per user.
PRICE_SENSITIVITY_LEVELS = np.array([0.0, 0.5, 1.0, 1.5, 2.0])


@dataclass(frozen=True)
class ShopUsers:
    """The drawn users.

    Attributes:
        user_ids: ``"U-000000"``-style ids.
        taste: ``[2, n_users, n_leaves]`` category taste before (0) and after (1) the drift time;
            each row sums to 1.
        price_sensitivity: how much a user avoids dear items, per user (>= 0).
        price_level: index into ``PRICE_SENSITIVITY_LEVELS`` nearest to ``price_sensitivity``.
        n_events: events per user.
    """

    user_ids: np.ndarray
    taste: np.ndarray
    price_sensitivity: np.ndarray
    price_level: np.ndarray
    n_events: np.ndarray

    def draw_leaf(self, user: np.ndarray, phase: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A leaf per row from the taste of ``user`` in ``phase`` (0/1), by inverse CDF of ``u``."""
        cumulative = np.cumsum(self.taste[phase, user], axis=1)
        leaf = (cumulative < u[:, None] * cumulative[:, -1:]).sum(axis=1)
        clipped: np.ndarray = np.minimum(leaf, self.taste.shape[2] - 1)
        return clipped


def build_users(config: ShopSimConfig, rng: np.random.Generator) -> ShopUsers:
    """Draw ``config.n_users`` users and spread ``config.n_events`` events over them.

    The draws do not depend on ``config.drift``; only how much of the second taste is mixed in does.
    """
    n_users, n_leaves = config.n_users, config.n_leaves
    leaf_appeal = rng.gamma(2.0, size=n_leaves)
    taste_before = _dirichlet(TASTE_CONCENTRATION * n_leaves * leaf_appeal / leaf_appeal.sum(), n_users, rng)
    trend = leaf_appeal[rng.permutation(n_leaves)]
    taste_target = _dirichlet(TASTE_CONCENTRATION * n_leaves * trend / trend.sum(), n_users, rng)
    shift = config.drift.taste_shift
    taste = np.stack([taste_before, (1.0 - shift) * taste_before + shift * taste_target])

    sensitivity = rng.gamma(2.0, 0.45, n_users)
    step = PRICE_SENSITIVITY_LEVELS[1] - PRICE_SENSITIVITY_LEVELS[0]
    level = np.clip(np.rint(sensitivity / step), 0, len(PRICE_SENSITIVITY_LEVELS) - 1).astype(np.int64)

    activity = rng.lognormal(0.0, ACTIVITY_SPREAD, n_users)
    extra = rng.multinomial(config.n_events - MIN_EVENTS_PER_USER * n_users, activity / activity.sum())
    return ShopUsers(numbered_ids("U-", n_users), taste, sensitivity, level, MIN_EVENTS_PER_USER + extra)


def _dirichlet(alpha: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Dirichlet(alpha) rows, via normalised gammas; a tiny floor keeps rows summing to 1 even
    when every gamma underflows (possible with alpha this small)."""
    draws = rng.gamma(alpha, size=(n, len(alpha))) + 1e-12
    rows: np.ndarray = draws / draws.sum(axis=1, keepdims=True)
    return rows
