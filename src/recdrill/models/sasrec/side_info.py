"""What SASRec knows of an item besides its id: attribute membership, price level, and the groups
its augmentations substitute within.

All three are read from the catalogue once per ``fit`` and saved with the model (the attribute
membership and price buckets) or used only while training (the substitution groups).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recdrill.data.dataset import Catalog


def attribute_membership(catalog: Catalog) -> sp.csr_matrix | None:
    """``[n_items, n_attributes]`` 0/1 matrix of each item's attributes (brand, categories), or None
    when the catalogue has none."""
    groups = catalog.item_groups()
    if groups is None or not len(groups.values):
        return None
    membership = groups.to_csr(int(groups.values.max()) + 1)
    membership.data[:] = 1.0
    return membership


def price_buckets(prices: np.ndarray | None, n_buckets: int) -> np.ndarray | None:
    """Each item's price quantile bucket in ``0..n_buckets-1`` (-1 = unknown), or None without prices.

    Example:
        >>> price_buckets(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), 2).tolist()
        [0, 0, -1, 1, 1]
    """
    if prices is None or n_buckets <= 0:
        return None
    known = np.isfinite(prices)
    if not known.any():
        return None
    # Interior quantile edges; repeated edges (many equal prices) collapse into one bucket.
    edges = np.unique(np.quantile(prices[known], np.linspace(0, 1, n_buckets + 1)[1:-1]))
    buckets = np.full(len(prices), -1, dtype=np.int64)
    buckets[known] = np.searchsorted(edges, prices[known], side="right")
    return buckets


def substitution_groups(catalog: Catalog) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per item: its category (or rarest attribute) and its brand, -1 where unknown.

    Amazon's attributes mix brands and categories, so where the catalogue has no leaf categories an
    item's rarest attribute stands in for its category.
    """
    category = catalog.category
    if category is None and catalog.attributes is not None and len(catalog.attributes.values):
        attributes = catalog.attributes
        frequency = np.bincount(attributes.values)
        rows = attributes.row_ids
        # The rarest attribute of each item: sort by (item, frequency) and take each item's first.
        order = np.lexsort((frequency[attributes.values], rows))
        first = np.unique(rows[order], return_index=True)[1]
        category = np.full(catalog.n_items, -1, dtype=np.int64)
        category[rows[order][first]] = attributes.values[order][first]
    return category, catalog.brand
