"""Tests of recdrill.models.sasrec.side_info: attribute membership, price buckets and substitution groups."""

from __future__ import annotations

import numpy as np

from recdrill.data.dataset import Catalog
from recdrill.data.ragged import Ragged
from recdrill.models.sasrec.side_info import attribute_membership, price_buckets, substitution_groups


def ids(n: int) -> np.ndarray:
    return np.array([f"i{i}" for i in range(n)], dtype=object)


def test_membership_marks_each_items_category_and_ancestors_once() -> None:
    catalog = Catalog(
        ids(3),
        category=np.array([1, 2, -1]),
        category_names=("top", "a", "b"),
        category_parent=np.array([-1, 0, 0]),
    )
    membership = attribute_membership(catalog)
    assert membership is not None and membership.shape == (3, 3)
    assert membership.toarray().tolist() == [[1, 1, 0], [1, 0, 1], [0, 0, 0]]


def test_membership_of_repeated_attributes_is_still_zero_or_one() -> None:
    catalog = Catalog(ids(2), attributes=Ragged.from_lists([[3, 3, 0], [1]]))
    membership = attribute_membership(catalog)
    assert membership is not None
    assert membership.toarray().tolist() == [[1, 0, 0, 1], [0, 1, 0, 0]]
    assert catalog.attributes is not None and catalog.attributes.to_lists() == [[3, 3, 0], [1]]


def test_no_membership_without_categories_or_attributes() -> None:
    assert attribute_membership(Catalog(ids(2))) is None
    assert attribute_membership(Catalog(ids(2), attributes=Ragged.from_lists([[], []]))) is None
    assert attribute_membership(Catalog(ids(2), category=np.array([-1, -1]), category_names=("x",))) is None


def test_price_buckets_are_quantiles_with_minus_one_for_unknown_prices() -> None:
    assert price_buckets(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), 2).tolist() == [0, 0, -1, 1, 1]  # type: ignore[union-attr]
    eight = price_buckets(np.arange(1.0, 9.0), 4)
    assert eight is not None and eight.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and eight.dtype == np.int64
    assert price_buckets(np.array([1.0, np.inf, 3.0]), 2).tolist() == [0, -1, 1]  # type: ignore[union-attr]


def test_equal_prices_collapse_into_one_bucket() -> None:
    buckets = price_buckets(np.array([5.0, 5.0, 5.0, 5.0, 1.0]), 4)
    assert buckets is not None and buckets.tolist() == [1, 1, 1, 1, 0]


def test_no_buckets_without_prices_or_with_buckets_off() -> None:
    assert price_buckets(None, 4) is None
    assert price_buckets(np.array([1.0, 2.0]), 0) is None
    assert price_buckets(np.array([np.nan, np.nan]), 4) is None


def test_substitution_groups_are_the_category_and_the_brand() -> None:
    category, brand = np.array([3, -1, 3]), np.array([0, 1, -1])
    groups = substitution_groups(
        Catalog(ids(3), category=category, category_names=tuple("abcd"), brand=brand)
    )
    assert groups[0] is category and groups[1] is brand


def test_without_categories_the_rarest_attribute_stands_in_for_the_category() -> None:
    # Attribute 0 is on three items (a brand, say), 5 on two, 7 on one; item 2 has no attributes.
    attributes = Ragged.from_lists([[0, 5], [7, 0, 5], [], [0]])
    category, brand = substitution_groups(Catalog(ids(4), attributes=attributes))
    assert category is not None and category.tolist() == [5, 7, -1, 0]
    assert brand is None


def test_no_groups_without_categories_attributes_or_brands() -> None:
    assert substitution_groups(Catalog(ids(2))) == (None, None)
    assert substitution_groups(Catalog(ids(2), attributes=Ragged.from_lists([[], []]))) == (None, None)
