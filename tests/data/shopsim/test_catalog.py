"""Tests of recdrill.data.shopsim.catalog: the category tree, brands, prices, titles and item neighbours."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recdrill.data.shopsim.catalog import MIN_PRICE, ShopCatalog, build_catalog, neighbour_table, numbered_ids
from recdrill.data.shopsim.config import ShopSimConfig
from recdrill.data.shopsim.vocab import TOP_CATEGORIES

CONFIG = ShopSimConfig(
    n_items=120, n_users=50, n_events=500, n_top_categories=3, n_subcategories=2, n_brands=6
)


@pytest.fixture(scope="module")
def shop() -> ShopCatalog:
    return build_catalog(CONFIG, np.random.default_rng(0))


def test_the_tree_has_the_top_categories_then_their_leaves(shop: ShopCatalog) -> None:
    catalog = shop.catalog
    assert catalog.category_names == (
        "Beauty", "Toys", "Kitchen", "Makeup", "Skincare", "Building Sets", "Dolls", "Cookware", "Cutlery",
    )  # fmt: skip
    assert catalog.category_parent is not None
    assert catalog.category_parent.tolist() == [-1, -1, -1, 0, 0, 1, 1, 2, 2]
    assert (shop.n_top, shop.n_leaves) == (3, 6) and shop.leaf_top.tolist() == [0, 0, 1, 1, 2, 2]


def test_every_item_sits_on_a_leaf_and_every_leaf_has_an_item(shop: ShopCatalog) -> None:
    assert shop.catalog.category is not None
    np.testing.assert_array_equal(shop.catalog.category, shop.n_top + shop.leaf)
    assert np.bincount(shop.leaf, minlength=6).min() >= 1
    np.testing.assert_array_equal(shop.top, shop.leaf_top[shop.leaf])


def test_a_catalogue_with_one_item_per_leaf_fills_every_leaf_once() -> None:
    config = replace(CONFIG, n_items=6)
    tight = build_catalog(config, np.random.default_rng(2))
    assert sorted(tight.leaf.tolist()) == [0, 1, 2, 3, 4, 5]


def test_ids_and_prices(shop: ShopCatalog) -> None:
    assert shop.catalog.item_ids[:2].tolist() == ["SKU-000000", "SKU-000001"]
    assert shop.price.min() >= MIN_PRICE
    np.testing.assert_allclose(shop.price * 100, np.rint(shop.price * 100), atol=1e-6)
    # The centred log price averages zero within every leaf.
    means = np.bincount(shop.leaf, shop.log_price_centred) / np.bincount(shop.leaf)
    np.testing.assert_allclose(means, 0.0, atol=1e-9)


def test_titles_read_brand_adjective_noun_variant_from_the_items_words(shop: ShopCatalog) -> None:
    catalog = shop.catalog
    assert catalog.title is not None
    for item in range(0, 120, 11):
        top = TOP_CATEGORIES[shop.top[item]]
        brand = catalog.brand_names[shop.brand[item]]
        noun, adjective = shop.noun_names[shop.noun[item]], shop.adjective_names[shop.adjective[item]]
        assert noun in dict(top.leaves[: CONFIG.n_subcategories])[catalog.category_names[3 + shop.leaf[item]]]
        assert adjective in top.adjectives
        head = f"{brand} {adjective} {noun} "
        assert str(catalog.title[item]).startswith(head)
        assert str(catalog.title[item])[len(head) :] in top.variants


def test_brands_are_distinct_and_sell_in_at_most_three_top_categories(shop: ShopCatalog) -> None:
    tops_per_brand = [len(set(shop.top[shop.brand == b].tolist())) for b in np.unique(shop.brand)]
    assert min(tops_per_brand) >= 1 and max(tops_per_brand) <= 3
    assert len(set(shop.catalog.brand_names)) == 6 and shop.brand.max() < 6


def test_attribute_tags_are_brand_then_shifted_leaf_and_top_category(shop: ShopCatalog) -> None:
    attributes = shop.catalog.attributes
    assert attributes is not None and attributes.lengths.tolist() == [3] * 120
    assert attributes.row(5).tolist() == [shop.brand[5], 6 + 3 + shop.leaf[5], 6 + shop.top[5]]


def test_the_same_generator_state_gives_the_same_catalogue(shop: ShopCatalog) -> None:
    again = build_catalog(CONFIG, np.random.default_rng(0))
    assert again.catalog.title is not None and shop.catalog.title is not None
    assert again.catalog.title.tolist() == shop.catalog.title.tolist()
    np.testing.assert_array_equal(again.price, shop.price)
    np.testing.assert_array_equal(again.popularity, shop.popularity)


def test_the_brand_and_price_views_need_those_columns(shop: ShopCatalog) -> None:
    bare = replace(shop, catalog=replace(shop.catalog, brand=None, price=None))
    with pytest.raises(RuntimeError, match="has no brand column"):
        _ = bare.brand
    with pytest.raises(RuntimeError, match="has no price column"):
        _ = bare.price


def test_neighbours_share_the_leaf_and_wrap_around_ordered_by_brand_and_price(shop: ShopCatalog) -> None:
    table = neighbour_table(shop, np.ones(120, dtype=bool), 4)
    assert table.shape == (120, 4)
    np.testing.assert_array_equal(shop.leaf[table], np.repeat(shop.leaf[:, None], 4, axis=1))
    # Within a leaf ordered by (brand, price), the neighbours are at offsets +1, -1, +2, -2.
    leaf_items = np.flatnonzero(shop.leaf == 0)
    order = leaf_items[np.lexsort((shop.price[leaf_items], shop.brand[leaf_items]))]
    size = len(order)
    for rank, item in enumerate(order):
        expected = [order[(rank + step) % size] for step in (1, -1, 2, -2)]
        assert table[item].tolist() == expected


def test_unavailable_items_point_at_themselves_and_are_never_neighbours(shop: ShopCatalog) -> None:
    available = np.ones(120, dtype=bool)
    available[::3] = False
    table = neighbour_table(shop, available, 8)
    hidden = np.flatnonzero(~available)
    np.testing.assert_array_equal(table[hidden], np.repeat(hidden[:, None], 8, axis=1))
    assert not np.isin(table[available], hidden).any()


def test_a_single_available_item_of_a_leaf_is_its_own_neighbour(shop: ShopCatalog) -> None:
    alone = int(np.flatnonzero(shop.leaf == 2)[0])
    available = shop.leaf != 2
    available[alone] = True
    assert neighbour_table(shop, available, 3)[alone].tolist() == [alone] * 3


def test_numbered_ids_pad_to_six_digits_and_grow_when_needed() -> None:
    assert numbered_ids("SKU-", 3).tolist() == ["SKU-000000", "SKU-000001", "SKU-000002"]
    ids = numbered_ids("U-", 1_000_001)
    assert ids[-1] == "U-1000000" and ids[0] == "U-0000000" and ids.dtype == object
