"""Which items and categories the synthetic shop's drift touches, drawn once per shop.

The draws are made whatever the knobs say, so turning one knob never reshuffles the rest of the shop:
with the same seed, a shop with a price shock has exactly the events of the shop without one, only
dearer after the drift time.

Example:
    >>> import numpy as np
    >>> from recdrill.data.shopsim.catalog import build_catalog
    >>> from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
    >>> config = ShopSimConfig(n_items=100, n_brands=20, drift=DriftConfig(new_items=0.1, price_shock=2.0))
    >>> shop = build_catalog(config, np.random.default_rng(0))
    >>> drift = draw_drift(config, shop, np.random.default_rng(1))
    >>> int(drift.new_item.sum()), int(drift.shocked_leaf.sum())
    (10, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.shopsim.catalog import ShopCatalog
from recdrill.data.shopsim.config import ShopSimConfig


@dataclass(frozen=True)
class ShopDrift:
    """The drawn drift.

    Attributes:
        time: epoch second from which drift applies.
        new_item: per item, True if it only exists from ``time`` on.
        shocked_leaf: per leaf, True if its prices are multiplied by ``price_shock`` from ``time`` on.
        price_shock: the multiplier.
    """

    time: int
    new_item: np.ndarray
    shocked_leaf: np.ndarray
    price_shock: float

    def price_factor(self, leaf: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
        """Price multiplier of an item of ``leaf`` seen at ``timestamp`` (1 where no shock applies)."""
        shocked = self.shocked_leaf[leaf] & (timestamp >= self.time)
        return np.where(shocked, self.price_shock, 1.0)


def draw_drift(config: ShopSimConfig, shop: ShopCatalog, rng: np.random.Generator) -> ShopDrift:
    """Pick the new items and the shocked leaf categories of ``config.drift``.

    ``round(new_items * n_items)`` items become new, except that every leaf keeps its most popular
    item as an old one (so each leaf can be shopped before the drift); ``round(price_shock_share *
    n_leaves)`` leaves, at least one when the share is positive, are shocked.
    """
    drift = config.drift
    n_items, n_leaves = shop.catalog.n_items, shop.n_leaves
    # Random order of all items, leaf anchors (most popular item of each leaf) moved to the end.
    anchor = np.zeros(n_items, dtype=bool)
    by_popularity = np.lexsort((-shop.popularity, shop.leaf))
    first_of_leaf = np.concatenate([[True], np.diff(shop.leaf[by_popularity]) != 0])
    anchor[by_popularity[first_of_leaf]] = True
    shuffled = rng.permutation(n_items)
    candidates = shuffled[~anchor[shuffled]]
    n_new = min(round(drift.new_items * n_items), len(candidates))
    new_item = np.zeros(n_items, dtype=bool)
    new_item[candidates[:n_new]] = True

    leaf_order = rng.permutation(n_leaves)
    n_shocked = round(drift.price_shock_share * n_leaves)
    if drift.price_shock_share > 0:
        n_shocked = max(n_shocked, 1)
    shocked_leaf = np.zeros(n_leaves, dtype=bool)
    shocked_leaf[leaf_order[:n_shocked]] = True
    return ShopDrift(config.drift_time, new_item, shocked_leaf, float(drift.price_shock))
