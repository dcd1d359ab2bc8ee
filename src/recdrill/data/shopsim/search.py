"""Search in the synthetic shop: the queries sessions start with and their relevance judgements.

A search session's query is made of the words of the item the user then looks at first (the item
they were after), in lower case: its noun alone (``"lipstick"``), its adjective and noun
(``"matte lipstick"``) or its brand and noun (``"lumora lipstick"``). Every event of the session
carries the query.

Relevance of an item to a query made from noun N (which belongs to leaf category L) and, optionally,
adjective A or brand B:

* ``Relevance.EXACT``: the item is in L, its noun is N and its adjective is A (brand is B) when the
  query names one. As titles read ``"{brand} {adjective} {noun} {variant}"``, this is the same as: the
  item is in L and its title contains every word of the query.
* ``Relevance.PARTIAL``: the item is in L but is not exact (same kind of product, or a neighbouring
  one in the same leaf).
* ``Relevance.IRRELEVANT``: the item is in another top category.

Items of the same top category but another leaf are not judged. Every exact item of every query is
judged; up to ``MAX_PARTIAL`` partial and ``MAX_IRRELEVANT`` irrelevant items per query are sampled.

Example:
    >>> from recdrill.data.shopsim import ShopSim
    >>> data = ShopSim(n_items=300, n_users=100, n_events=2_000, seed=3).generate()
    >>> data.judgements is not None and set(data.judgements.query.tolist()) == set(range(len(data.queries)))
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.dataset import Judgements, Relevance
from recdrill.data.shopsim.catalog import ShopCatalog

QUERY_KIND_SHARE = (0.25, 0.45, 0.30)  # noun alone, adjective + noun, brand + noun
MAX_PARTIAL = 20
MAX_IRRELEVANT = 20


@dataclass(frozen=True)
class ShopSearch:
    """Queries (sorted alphabetically), the query of each session (-1 = none) and the judgements."""

    queries: tuple[str, ...]
    session_query: np.ndarray
    judgements: Judgements


def build_search(
    shop: ShopCatalog, first_item: np.ndarray, share: float, rng: np.random.Generator
) -> ShopSearch:
    """Give a ``share`` of the sessions (whose first items are ``first_item``) a query, and judge them."""
    n_sessions = len(first_item)
    searched = rng.random(n_sessions) < share
    kind = rng.choice(len(QUERY_KIND_SHARE), size=n_sessions, p=QUERY_KIND_SHARE)[searched]
    target = first_item[searched]
    modifier = np.select([kind == 1, kind == 2], [shop.adjective[target], shop.brand[target]], -1)
    # One integer key per (kind, noun, modifier); the modifier is shifted by one to make room for -1.
    width = max(len(shop.adjective_names), len(shop.catalog.brand_names)) + 1
    key = (kind * len(shop.noun_names) + shop.noun[target]) * width + modifier + 1
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    q_kind, rest = np.divmod(unique, len(shop.noun_names) * width)
    q_noun, q_modifier = rest // width, rest % width - 1
    # A Python loop over distinct queries only: their number is bounded by the vocabulary.
    texts = [
        _query_text(shop, k, n, m)
        for k, n, m in zip(q_kind.tolist(), q_noun.tolist(), q_modifier.tolist(), strict=True)
    ]
    order = np.argsort(np.array(texts, dtype=object), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))

    session_query = np.full(n_sessions, -1, dtype=np.int64)
    session_query[searched] = rank[inverse.ravel()]
    q_leaf = shop.leaf[target[first]]
    judgements = _judge(shop, q_kind[order], q_noun[order], q_modifier[order], q_leaf[order], rng)
    return ShopSearch(tuple(texts[i] for i in order), session_query, judgements)


def _query_text(shop: ShopCatalog, kind: int, noun: int, modifier: int) -> str:
    words = [shop.noun_names[noun]]
    if kind == 1:
        words.insert(0, shop.adjective_names[modifier])
    elif kind == 2:
        words.insert(0, shop.catalog.brand_names[modifier])
    return " ".join(words).lower()


def _judge(
    shop: ShopCatalog,
    kind: np.ndarray,
    noun: np.ndarray,
    modifier: np.ndarray,
    leaf: np.ndarray,
    rng: np.random.Generator,
) -> Judgements:
    """Judgements of queries given as (kind, noun, modifier, leaf) columns, sorted by (query, item)."""
    n_items = shop.catalog.n_items
    items_by_leaf = np.argsort(shop.leaf, kind="stable")
    leaf_size = np.bincount(shop.leaf, minlength=shop.n_leaves)
    leaf_end = np.cumsum(leaf_size)
    exact_pairs, partial_pairs = [], []
    for current in np.unique(leaf):  # per leaf category, not per query
        queries = np.flatnonzero(leaf == current)
        items = items_by_leaf[leaf_end[current] - leaf_size[current] : leaf_end[current]]
        q, i = np.repeat(queries, len(items)), np.tile(items, len(queries))
        exact = (shop.noun[i] == noun[q]) & (
            (kind[q] == 0)
            | ((kind[q] == 1) & (shop.adjective[i] == modifier[q]))
            | ((kind[q] == 2) & (shop.brand[i] == modifier[q]))
        )
        exact_pairs.append(q[exact] * n_items + i[exact])
        partial_pairs.append(q[~exact] * n_items + i[~exact])
    exact_keys = np.concatenate(exact_pairs) if exact_pairs else np.zeros(0, dtype=np.int64)
    partial_keys = _sample_per_query(
        np.concatenate(partial_pairs) if partial_pairs else np.zeros(0, dtype=np.int64), n_items, rng
    )
    irrelevant_keys = _irrelevant(shop, shop.leaf_top[leaf], rng)
    keys = np.concatenate([exact_keys, partial_keys, irrelevant_keys]).astype(np.int64)
    grade = np.repeat(
        np.array([Relevance.EXACT, Relevance.PARTIAL, Relevance.IRRELEVANT], dtype=np.int8),
        [len(exact_keys), len(partial_keys), len(irrelevant_keys)],
    )
    order = np.argsort(keys, kind="stable")
    return Judgements(
        query=(keys[order] // n_items).astype(np.int32),
        item=(keys[order] % n_items).astype(np.int32),
        grade=grade[order],
    )


def _sample_per_query(keys: np.ndarray, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``MAX_PARTIAL`` of the (query * n_items + item) ``keys`` per query, chosen at random."""
    query = keys // n_items
    order = np.lexsort((rng.random(len(keys)), query))
    query_sorted = query[order]
    starts = np.searchsorted(query_sorted, query_sorted, side="left")
    return keys[order][np.arange(len(keys)) - starts < MAX_PARTIAL]


def _irrelevant(shop: ShopCatalog, query_top: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Up to ``MAX_IRRELEVANT`` distinct items from other top categories per query, as keys.

    Draws are uniform over the items outside the query's top category (by skipping over that
    category's block in top-sorted order); repeats are merged, hence "up to".
    """
    n_items = shop.catalog.n_items
    item_top = shop.top
    items_by_top = np.argsort(item_top, kind="stable")
    counts = np.bincount(item_top, minlength=shop.n_top)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    outside = n_items - counts[query_top]
    draw = (rng.random((len(query_top), MAX_IRRELEVANT)) * outside[:, None]).astype(np.int64)
    position = np.where(draw < starts[query_top][:, None], draw, draw + counts[query_top][:, None])
    keys = np.arange(len(query_top))[:, None] * n_items + items_by_top[np.minimum(position, n_items - 1)]
    return np.unique(keys[outside > 0])
