"""Tests of recdrill.data.dataset: the catalogue, interactions, judgements and the dataset built from them."""

from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.dataset import Catalog, Dataset, EventType, Interactions, Judgements, Relevance
from recdrill.data.quality import DataQualityReport
from recdrill.data.ragged import Ragged
from tests.conftest import make_shop


def ids(*names: str) -> np.ndarray:
    return np.array(names, dtype=object)


def events(user: list[int], item: list[int], timestamp: list[int], **columns: np.ndarray) -> Interactions:
    return Interactions(
        np.array(user), np.array(item), np.array(timestamp), np.zeros(len(user), dtype=np.int8), **columns
    )


def test_event_types_and_relevance_grades_are_ordered_by_strength() -> None:
    assert [int(e) for e in EventType] == [0, 1, 2, 3]
    assert EventType.VIEW < EventType.CLICK < EventType.CART < EventType.PURCHASE
    assert Relevance.IRRELEVANT < Relevance.PARTIAL < Relevance.EXACT == 2


def test_catalog_columns_must_have_one_row_per_item() -> None:
    with pytest.raises(ValueError, match=r"column 'title' has 2 rows, expected 3"):
        Catalog(ids("a", "b", "c"), title=ids("x", "y"))
    with pytest.raises(ValueError, match=r"column 'price' has 1 rows, expected 3"):
        Catalog(ids("a", "b", "c"), price=np.array([1.0]))
    with pytest.raises(ValueError, match=r"attributes has 1 rows, expected 3"):
        Catalog(ids("a", "b", "c"), attributes=Ragged.from_lists([[0]]))
    with pytest.raises(ValueError, match="category_parent must have one entry per category name"):
        Catalog(ids("a"), category=np.array([0]), category_names=("c",), category_parent=np.array([-1, 0]))


def test_item_groups_are_each_items_category_and_its_ancestors() -> None:
    catalog = Catalog(
        ids("a", "b", "c", "d"),
        category=np.array([3, -1, 2, 1]),
        category_names=("top", "mid", "leaf", "deep"),
        category_parent=np.array([-1, 0, 1, 2]),
    )
    groups = catalog.item_groups()
    assert groups is not None
    assert groups.to_lists() == [[0, 1, 2, 3], [], [0, 1, 2], [0, 1]]


def test_item_groups_without_a_tree_are_the_categories_alone() -> None:
    catalog = Catalog(ids("a", "b", "c"), category=np.array([1, 0, -1]), category_names=("x", "y"))
    groups = catalog.item_groups()
    assert groups is not None and groups.to_lists() == [[1], [0], []]


def test_item_groups_fall_back_to_attributes_and_else_none() -> None:
    attributes = Ragged.from_lists([[4, 1], [], [2]])
    assert Catalog(ids("a", "b", "c"), attributes=attributes).item_groups() is attributes
    assert Catalog(ids("a", "b", "c")).item_groups() is None


def test_interaction_columns_must_be_of_one_length() -> None:
    with pytest.raises(ValueError, match=r"column 'timestamp' has 1 rows, expected 2"):
        events([0, 0], [1, 2], [5])
    with pytest.raises(ValueError, match=r"column 'query' has 3 rows, expected 2"):
        events([0, 0], [1, 2], [5, 6], query=np.array([0, 0, 0]))


def test_select_takes_every_column_by_mask_or_index() -> None:
    inter = events(
        [0, 1, 2], [5, 6, 7], [10, 11, 12], query=np.array([0, -1, 1]), price=np.array([1.0, 2, 3])
    )
    picked = inter.select(np.array([True, False, True]))
    assert (picked.item.tolist(), picked.timestamp.tolist()) == ([5, 7], [10, 12])
    assert picked.query is not None and picked.query.tolist() == [0, 1]
    reordered = inter.select(np.array([2, 0]))
    assert reordered.price is not None and reordered.price.tolist() == [3.0, 1.0]
    assert len(reordered) == 2 and events([0], [0], [0]).select(np.array([0])).query is None


def test_judgements_are_rows_of_equal_length() -> None:
    judgements = Judgements(np.array([0, 0, 1]), np.array([3, 4, 3]), np.array([2, 1, 0]))
    assert len(judgements) == 3
    with pytest.raises(ValueError, match=r"column 'grade' has 2 rows, expected 3"):
        Judgements(np.array([0, 0, 1]), np.array([3, 4, 3]), np.array([2, 1]))


def test_create_sorts_by_user_then_time_then_source_order_and_normalises_dtypes() -> None:
    inter = events([1, 0, 1, 1, 0], [0, 1, 2, 3, 4], [9, 5, 3, 3, 1], price=np.array([1, 2, 3, 4, 5]))
    shop = Dataset.create("s", ids("u0", "u1"), Catalog(ids(*"abcde")), inter)
    sorted_events = shop.interactions
    assert sorted_events.user.tolist() == [0, 0, 1, 1, 1]
    assert sorted_events.item.tolist() == [4, 1, 2, 3, 0]  # items 2 and 3 tie at time 3: file order
    assert sorted_events.price is not None and sorted_events.price.tolist() == [5.0, 2.0, 3.0, 4.0, 1.0]
    dtypes = (sorted_events.user.dtype, sorted_events.item.dtype, sorted_events.timestamp.dtype)
    assert dtypes == (np.int32, np.int32, np.int64)
    assert sorted_events.event.dtype == np.int8 and sorted_events.price.dtype == np.float64
    assert shop.sequences().to_lists() == [[4, 1], [2, 3, 0]]


@pytest.mark.parametrize(
    ("user", "item", "message"),
    [
        ([0, 2], [0, 0], r"interaction user ids must lie in \[0, 2\)"),
        ([0, -1], [0, 0], r"interaction user ids must lie in \[0, 2\)"),
        ([0, 1], [0, 3], r"interaction item ids must lie in \[0, 3\)"),
    ],
)
def test_create_refuses_ids_outside_the_vocabularies(user: list[int], item: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Dataset.create("s", ids("u0", "u1"), Catalog(ids("a", "b", "c")), events(user, item, [0, 1]))


def test_create_refuses_query_ids_beyond_the_queries() -> None:
    inter = events([0, 0], [0, 1], [0, 1], query=np.array([-1, 1]))
    with pytest.raises(ValueError, match="interaction query ids must be below 1"):
        Dataset.create("s", ids("u0"), Catalog(ids("a", "b")), inter, queries=("mug",))


def test_an_empty_dataset_has_empty_sequences_and_zero_counts() -> None:
    shop = Dataset.create("s", ids("u0", "u1"), Catalog(ids("a", "b")), events([], [], []))
    assert shop.sequences().to_lists() == [[], []]
    assert shop.item_counts().tolist() == [0, 0]
    assert (shop.n_users, shop.n_items, len(shop.interactions)) == (2, 2, 0)


def test_item_counts_and_summary_describe_the_shop() -> None:
    shop = make_shop([[0, 1, 2], [2]], n_items=4)
    assert shop.item_counts().tolist() == [1, 1, 2, 0]
    assert shop.summary() == "toy: 2 users, 4 items, 4 interactions, mean history 2.0"


def test_the_fingerprint_follows_the_catalogue_and_the_digest_the_interactions() -> None:
    shop = make_shop([[0, 1, 2], [2]], n_items=4)
    fewer = shop.with_interactions(shop.interactions.select(np.array([0, 1, 2])))
    assert fewer.fingerprint() == shop.fingerprint()
    assert fewer.interactions_digest() != shop.interactions_digest()
    assert make_shop([[0, 1, 2], [2]], n_items=4).interactions_digest() == shop.interactions_digest()
    assert make_shop([[0, 1, 2], [2]], n_items=5).fingerprint() != shop.fingerprint()
    assert len(shop.fingerprint()) == 16 and len(shop.interactions_digest()) == 16


def test_with_interactions_keeps_everything_else_including_the_quality_report() -> None:
    report = DataQualityReport(source="x", rows_read=3, rows_kept=3)
    inter = events([0, 0, 1], [0, 1, 1], [0, 1, 0])
    shop = Dataset.create("s", ids("u0", "u1"), Catalog(ids("a", "b", "c")), inter, quality=report)
    subset = shop.with_interactions(shop.interactions.select(np.array([True, False, True])))
    assert subset.user_ids is shop.user_ids and subset.catalog is shop.catalog
    assert subset.quality is report and subset.name == "s"
    assert subset.sequences().to_lists() == [[0], [1]]
