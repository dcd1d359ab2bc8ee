"""ShopSim: a seeded synthetic e-commerce shop, for trying recdrill without data of your own.

It generates a catalogue (category tree, brands, prices, titles), users with latent tastes, sessions
of view/click/cart/purchase events with real sequential structure, search queries with graded
relevance judgements, a daily and weekly rhythm with a promotion surge, and optional drift. The
parts live in their own modules:

* :mod:`~recdrill.data.shopsim.config`: :class:`ShopSimConfig` and :class:`DriftConfig`;
* :mod:`~recdrill.data.shopsim.vocab`: the words of categories, titles and queries;
* :mod:`~recdrill.data.shopsim.catalog`: items, prices, titles and item neighbours;
* :mod:`~recdrill.data.shopsim.users`: tastes, price sensitivity and activity;
* :mod:`~recdrill.data.shopsim.clock`: when sessions happen;
* :mod:`~recdrill.data.shopsim.sessions`: what users look at and do;
* :mod:`~recdrill.data.shopsim.search`: queries and the relevance rule;
* :mod:`~recdrill.data.shopsim.drift`: which items and categories drift touches.

Everything is drawn from one ``np.random.default_rng(seed)`` (split into independent streams per
part), so the same config always gives the same shop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recdrill.data.dataset import Dataset, Interactions
from recdrill.data.quality import DataQualityReport
from recdrill.data.shopsim.catalog import build_catalog, neighbour_table
from recdrill.data.shopsim.config import ShopSimConfig
from recdrill.data.shopsim.drift import draw_drift
from recdrill.data.shopsim.search import build_search
from recdrill.data.shopsim.sessions import N_NEIGHBOURS, simulate_sessions
from recdrill.data.shopsim.users import build_users
from recdrill.errors import ConfigError


@dataclass(frozen=True)
class ShopSimTruth:
    """The hidden state behind a generated shop, for checking what models and detectors recover.

    Attributes:
        drift_time: epoch second from which drift applies.
        new_items: dense ids of the items that only exist from ``drift_time`` on.
        shocked_categories: category indices (into ``catalog.category_names``) whose prices are
            multiplied by ``drift.price_shock`` from ``drift_time`` on.
        item_popularity: latent log popularity per item.
        item_quality: latent quality per item (higher converts better).
        user_taste: ``[n_users, n_leaves]`` category taste before the drift; column ``j`` is category
            ``n_top_categories + j``.
        user_price_sensitivity: per user, how much they avoid dear items.
        neighbours: ``[n_items, k]`` the close neighbours sessions move between, nearest first.
    """

    drift_time: int
    new_items: np.ndarray
    shocked_categories: np.ndarray
    item_popularity: np.ndarray
    item_quality: np.ndarray
    user_taste: np.ndarray
    user_price_sensitivity: np.ndarray
    neighbours: np.ndarray


class ShopSim:
    """A seeded synthetic shop; :meth:`generate` returns it as a :class:`Dataset`.

    Args:
        config: the settings; defaults to ``ShopSimConfig()`` (10k items, 20k users, 500k events).
        **overrides: fields of :class:`ShopSimConfig` replacing those of ``config``.

    Raises:
        ConfigError: an unknown override, or a field with a bad value.

    Example:
        >>> sim = ShopSim(n_items=500, n_users=300, n_events=5_000, seed=7)
        >>> data = sim.generate()
        >>> data.name, data.n_items, data.n_users, len(data.interactions)
        ('shopsim', 500, 300, 5000)
        >>> int(data.sequences().lengths.min()) >= 5
        True
        >>> data.catalog.item_ids[0], data.catalog.category_names[:2]
        ('SKU-000000', ('Beauty', 'Toys'))
    """

    def __init__(self, config: ShopSimConfig | None = None, **overrides: Any) -> None:
        if config is not None and not isinstance(config, ShopSimConfig):
            raise ConfigError(f"ShopSim config must be a ShopSimConfig, got {type(config).__name__}")
        unknown = sorted(set(overrides) - set(ShopSimConfig.field_names()))
        if unknown:
            raise ConfigError(
                f"ShopSim got an unknown option {unknown[0]!r}; "
                f"options are {', '.join(ShopSimConfig.field_names())}"
            )
        self.config = replace(config if config is not None else ShopSimConfig(), **overrides)
        self._truth: ShopSimTruth | None = None

    def generate(self) -> Dataset:
        """Generate the shop: catalogue, users, exactly ``config.n_events`` events, queries, judgements.

        Every user has at least 5 events. ``interactions.price`` is the price at event time (after
        any price shock); ``interactions.query`` indexes ``queries`` for the events of sessions that
        started with a search, -1 otherwise. ``judgements`` grade items per query: EXACT when the item
        is in the query's leaf category and its title holds every query word, PARTIAL for the other
        items of that leaf (at most 20 sampled), IRRELEVANT for items of other top categories (at most
        20 sampled); see :mod:`~recdrill.data.shopsim.search`.

        Also sets :attr:`truth_`. Calling it again gives an identical dataset.
        """
        config = self.config
        streams = np.random.default_rng(config.seed).spawn(5)
        shop = build_catalog(config, streams[0])
        drift = draw_drift(config, shop, streams[1])
        users = build_users(config, streams[2])
        sessions = simulate_sessions(config, shop, users, drift, streams[3])
        search = build_search(
            shop, sessions.item[sessions.session_first_event], config.search_share, streams[4]
        )

        interactions = Interactions(
            user=sessions.user,
            item=sessions.item,
            timestamp=sessions.timestamp,
            event=sessions.event,
            query=search.session_query[sessions.session],
            price=sessions.price,
        )
        source = f"shopsim(seed={config.seed})"
        dataset = Dataset.create(
            "shopsim",
            users.user_ids,
            shop.catalog,
            interactions,
            has_time=True,
            queries=search.queries,
            judgements=search.judgements,
            quality=DataQualityReport(source=source, rows_read=config.n_events, rows_kept=config.n_events),
        )
        self._truth = ShopSimTruth(
            drift_time=drift.time,
            new_items=np.flatnonzero(drift.new_item),
            shocked_categories=shop.n_top + np.flatnonzero(drift.shocked_leaf),
            item_popularity=shop.popularity,
            item_quality=shop.quality,
            user_taste=users.taste[0],
            user_price_sensitivity=users.price_sensitivity,
            neighbours=neighbour_table(shop, np.ones(shop.catalog.n_items, dtype=bool), N_NEIGHBOURS),
        )
        return dataset

    @property
    def truth_(self) -> ShopSimTruth:
        """The hidden state of the last generated shop.

        Raises:
            AttributeError: :meth:`generate` has not been called yet.
        """
        if self._truth is None:
            raise AttributeError("ShopSim.truth_ is set by generate(); call generate() first")
        return self._truth

    def __repr__(self) -> str:
        return f"ShopSim({self.config!r})"
