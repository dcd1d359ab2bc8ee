"""Tests of recdrill.data.shopsim.search: the queries search sessions start with and their judgements."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Relevance
from recdrill.data.shopsim.catalog import ShopCatalog, build_catalog
from recdrill.data.shopsim.config import ShopSimConfig
from recdrill.data.shopsim.search import MAX_IRRELEVANT, MAX_PARTIAL, ShopSearch, build_search

CONFIG = ShopSimConfig(
    n_items=200, n_users=50, n_events=500, n_top_categories=3, n_subcategories=2, n_brands=6
)


@pytest.fixture(scope="module")
def shop() -> ShopCatalog:
    return build_catalog(CONFIG, np.random.default_rng(0))


@pytest.fixture(scope="module")
def first_items() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 200, size=400)


@pytest.fixture(scope="module")
def search(shop: ShopCatalog, first_items: np.ndarray) -> ShopSearch:
    return build_search(shop, first_items, 0.5, np.random.default_rng(1))


def test_without_search_no_session_has_a_query(shop: ShopCatalog, first_items: np.ndarray) -> None:
    none = build_search(shop, first_items, 0.0, np.random.default_rng(1))
    assert none.queries == () and len(none.judgements) == 0
    assert none.session_query.tolist() == [-1] * 400


def test_with_share_one_every_session_searches(shop: ShopCatalog, first_items: np.ndarray) -> None:
    every = build_search(shop, first_items, 1.0, np.random.default_rng(1))
    assert every.session_query.min() == 0 and every.session_query.max() == len(every.queries) - 1


def test_about_the_share_of_sessions_search_and_queries_are_sorted_and_distinct(search: ShopSearch) -> None:
    assert 0.4 < np.mean(search.session_query >= 0) < 0.6
    assert list(search.queries) == sorted(set(search.queries))
    used = np.unique(search.session_query[search.session_query >= 0])
    np.testing.assert_array_equal(used, np.arange(len(search.queries)))


def test_a_query_is_the_first_items_noun_alone_or_after_its_adjective_or_brand(
    shop: ShopCatalog, first_items: np.ndarray, search: ShopSearch
) -> None:
    kinds = set()
    for session in np.flatnonzero(search.session_query >= 0):
        item = first_items[session]
        text = search.queries[search.session_query[session]]
        noun = shop.noun_names[shop.noun[item]].lower()
        adjective = shop.adjective_names[shop.adjective[item]].lower()
        brand = shop.catalog.brand_names[shop.brand[item]].lower()
        options = {noun: "noun", f"{adjective} {noun}": "adjective", f"{brand} {noun}": "brand"}
        assert text in options, (text, options)
        kinds.add(options[text])
    assert kinds == {"noun", "adjective", "brand"}


def test_the_item_a_session_looks_at_first_is_an_exact_match_of_its_query(
    first_items: np.ndarray, search: ShopSearch
) -> None:
    judged = search.judgements
    exact = set(zip(judged.query[judged.grade == Relevance.EXACT].tolist(),
                    judged.item[judged.grade == Relevance.EXACT].tolist(), strict=True))  # fmt: skip
    searched = np.flatnonzero(search.session_query >= 0)
    assert all((int(search.session_query[s]), int(first_items[s])) in exact for s in searched)


def test_judgements_follow_the_relevance_rule(shop: ShopCatalog, search: ShopSearch) -> None:
    judged = search.judgements
    assert shop.catalog.title is not None
    words = [set(str(title).lower().split()) for title in shop.catalog.title]
    for query, text in enumerate(search.queries):
        rows = judged.query == query
        items, grades = judged.item[rows], judged.grade[rows]
        exact = items[grades == Relevance.EXACT]
        leaf = shop.leaf[exact[0]]
        wanted = set(text.split())
        in_leaf = np.flatnonzero(shop.leaf == leaf)
        assert sorted(exact.tolist()) == [i for i in in_leaf if wanted <= words[i]]
        partial = items[grades == Relevance.PARTIAL]
        assert len(partial) <= MAX_PARTIAL and np.all(shop.leaf[partial] == leaf)
        assert len(partial) == min(MAX_PARTIAL, len(in_leaf) - len(exact))
        irrelevant = items[grades == Relevance.IRRELEVANT]
        assert 1 <= len(irrelevant) <= MAX_IRRELEVANT
        assert np.all(shop.top[irrelevant] != shop.leaf_top[leaf])


def test_judgements_are_sorted_by_query_then_item_without_repeats(search: ShopSearch) -> None:
    keys = search.judgements.query.astype(np.int64) * 200 + search.judgements.item
    assert np.all(np.diff(keys) > 0)
    assert search.judgements.query.dtype == np.int32 and search.judgements.grade.dtype == np.int8
