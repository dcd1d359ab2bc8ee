"""Popularity baselines: global best-sellers and best-sellers of the categories a user browses."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError
from recdrill.models.base import BaseRecommender, csr_from_state, csr_to_state


class PopularityRecommender(BaseRecommender):
    """Recommends the items with most interactions in the training data to everyone (PopRec).

    Example:
        >>> from recdrill.data.shopsim import ShopSim
        >>> shop = ShopSim(n_items=200, n_users=100, n_events=3000, seed=1).generate()
        >>> model = PopularityRecommender().fit(shop)
        >>> model.recommend([[0, 1]], k=3).items.shape
        (1, 3)
    """

    kind: ClassVar[str] = "pop"

    share_: np.ndarray

    def _fit(self, dataset: Dataset) -> None:
        counts = dataset.item_counts().astype(np.float64)
        self.share_ = (counts / counts.sum()).astype(np.float32)

    def _score(self, histories: Ragged) -> np.ndarray:
        return np.broadcast_to(self.share_, (len(histories), self.n_items_))

    def _state(self) -> dict[str, np.ndarray]:
        return {"share": self.share_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.share_ = state["share"]


class CategoryPopularityRecommender(BaseRecommender):
    """Best-sellers of the groups (categories, or attribute tags) a user's history falls in.

    ``score(u, i) = sum_g affinity(u, g) * share(i | g) + prior * share(i)``, where ``affinity`` is
    the share of the user's history in group ``g`` and ``share(i | g)`` the item's share of sales
    in ``g``. The small global term ranks items outside the user's groups and serves empty
    histories. Groups come from ``Catalog.item_groups()`` (leaf category and its ancestors, else
    attribute ids); without either the model is plain popularity.

    Parameters:
        prior: weight of the global popularity term (>= 0).
    """

    kind: ClassVar[str] = "catpop"
    item_groups_: sp.csr_matrix  # [n_items, n_groups] 0/1 membership
    group_items_: sp.csr_matrix  # [n_groups, n_items] share(i | g)
    share_: np.ndarray

    def __init__(self, prior: float = 0.01) -> None:
        self.prior = prior

    def _fit(self, dataset: Dataset) -> None:
        if not self.prior >= 0:
            raise ConfigError(
                f"The 'prior' parameter of CategoryPopularityRecommender must be >= 0, got {self.prior}"
            )
        counts = dataset.item_counts().astype(np.float64)
        self.share_ = (counts / counts.sum()).astype(np.float32)
        groups = dataset.catalog.item_groups()
        if groups is None:
            groups = Ragged.from_lists([[] for _ in range(dataset.n_items)])
        n_groups = int(groups.values.max()) + 1 if len(groups.values) else 1
        membership = groups.to_csr(n_groups)
        membership.data[:] = 1.0
        sales = sp.csr_matrix(membership.T.multiply(counts[None, :]))
        totals = np.asarray(sales.sum(axis=1)).ravel()
        self.group_items_ = sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1.0)) @ sales, dtype=np.float32)
        self.item_groups_ = membership

    def _score(self, histories: Ragged) -> np.ndarray:
        history = histories.to_csr(self.n_items_)
        in_group = (history @ self.item_groups_).tocsr()
        lengths = np.maximum(histories.lengths, 1).astype(np.float32)
        affinity = sp.diags(1.0 / lengths) @ in_group
        scores = np.asarray((affinity @ self.group_items_).todense(), dtype=np.float32)
        scores += np.float32(self.prior) * self.share_[None, :]
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "share": self.share_,
            **csr_to_state("item_groups", self.item_groups_),
            **csr_to_state("group_items", self.group_items_),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.share_ = state["share"]
        self.item_groups_ = csr_from_state("item_groups", state)
        self.group_items_ = csr_from_state("group_items", state)
