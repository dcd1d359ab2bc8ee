"""Tests of recdrill.data.snapshot: what a serving process knows of the shop, saved beside a model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.snapshot import (
    SNAPSHOT_FILE,
    ShopSnapshot,
    event_histories,
    histories_before,
    reference_events,
)
from recdrill.digests import read_digests
from recdrill.errors import DataFormatError, ModelFileError
from recdrill.models.factory import load_model
from recdrill.models.popularity import PopularityRecommender
from tests.conftest import make_shop


@pytest.fixture
def shop() -> Dataset:
    """Three users: u0 walks 0 1 2 3, u1 walks 2 4, u2 saw only 1 (timestamps 0, 1, ... per user)."""
    return make_shop([[0, 1, 2, 3], [2, 4], [1]], n_items=5)


def tree_shop() -> Dataset:
    """Items 0-1 in leaf "A1" under top "A", item 2 in top "A" itself, item 3 in "B", item 4 unknown."""
    shop = make_shop([[0, 1, 2, 3, 4]], n_items=5)
    catalog = replace(
        shop.catalog,
        category=np.array([2, 2, 0, 1, -1]),
        category_names=("A", "B", "A1"),
        category_parent=np.array([-1, -1, 0]),
        price=np.array([1.0, np.nan, 3.0, 4.0, 5.0]),
    )
    return replace(shop, catalog=catalog)


def test_from_dataset_keeps_ids_counts_and_each_users_last_items(shop: Dataset) -> None:
    snap = ShopSnapshot.from_dataset(shop, history_length=2)
    assert snap.item_ids.tolist() == ["i0", "i1", "i2", "i3", "i4"] and snap.n_items == 5
    assert snap.user_ids.tolist() == ["u0", "u1", "u2"]
    assert snap.item_counts.tolist() == [1, 2, 2, 1, 1]
    assert snap.histories.to_lists() == [[2, 3], [2, 4], [1]]
    # Without categories every item is unknown (-1) and there is no tree; without prices, no price.
    assert snap.item_category.tolist() == [-1] * 5 and snap.category_parent.tolist() == []
    assert snap.item_price is None


def test_reference_histories_are_histories_at_recent_events(shop: Dataset) -> None:
    snap = ShopSnapshot.from_dataset(shop, history_length=2)
    # The last quarter of the timeline starts at time 1.5: u0's events at times 2 and 3.
    assert snap.reference_histories is not None
    assert snap.reference_histories.to_lists() == [[0, 1], [1, 2]]


def test_item_and_user_lookups_give_dense_ids_and_minus_one_for_unknown_ones(shop: Dataset) -> None:
    snap = ShopSnapshot.from_dataset(shop)
    assert snap.item_index(["i3", "nope", "i0", "i4"]).tolist() == [3, -1, 0, 4]
    assert snap.item_index([]).tolist() == []
    assert (snap.user_index("u1"), snap.user_index("u9")) == (1, -1)


def test_lookups_in_an_empty_shop_find_nothing() -> None:
    snap = ShopSnapshot(
        item_ids=np.array([], dtype=str),
        item_counts=np.zeros(0, dtype=np.int64),
        item_category=np.zeros(0, dtype=np.int32),
        category_names=(),
        category_parent=np.zeros(0, dtype=np.int32),
        user_ids=np.array([], dtype=str),
        histories=Ragged.from_lists([]),
    )
    assert snap.item_index(["a", "b"]).tolist() == [-1, -1] and snap.user_index("u") == -1


def test_category_items_include_the_items_of_sub_categories() -> None:
    snap = ShopSnapshot.from_dataset(tree_shop())

    def members(name: str) -> list[int] | None:
        items = snap.category_items(name)
        return None if items is None else items.tolist()

    assert (members("A"), members("A1"), members("B"), members("C")) == ([0, 1, 2], [0, 1], [3], None)


def test_save_and_load_round_trip_every_array(tmp_path: Path) -> None:
    snap = ShopSnapshot.from_dataset(tree_shop(), history_length=3)
    snap.save(tmp_path)
    loaded = ShopSnapshot.load(tmp_path)
    for name in ("item_ids", "item_counts", "item_category", "category_parent", "user_ids", "item_price"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(snap, name), err_msg=name)
    assert loaded.category_names == ("A", "B", "A1")
    assert loaded.histories.to_lists() == snap.histories.to_lists() == [[2, 3, 4]]
    assert loaded.reference_histories is not None and snap.reference_histories is not None
    assert loaded.reference_histories.to_lists() == snap.reference_histories.to_lists()
    assert loaded.item_index(["i2"]).tolist() == [2]


def test_a_snapshot_saved_without_prices_or_reference_loads_without_them(
    shop: Dataset, tmp_path: Path
) -> None:
    snap = replace(ShopSnapshot.from_dataset(shop), reference_histories=None)
    snap.save(tmp_path)
    loaded = ShopSnapshot.load(tmp_path)
    assert loaded.item_price is None and loaded.reference_histories is None
    assert loaded.histories.to_lists() == [[0, 1, 2, 3], [2, 4], [1]]


def test_loading_a_missing_or_corrupt_snapshot_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"snapshot\.npz: no shop snapshot: was the model saved by"):
        ShopSnapshot.load(tmp_path)
    (tmp_path / SNAPSHOT_FILE).write_bytes(b"PK\x03\x04 not an archive")
    with pytest.raises(DataFormatError, match=r"snapshot\.npz: corrupt shop snapshot"):
        ShopSnapshot.load(tmp_path)
    np.savez(tmp_path / SNAPSHOT_FILE, item_ids=np.array(["a"]))
    with pytest.raises(DataFormatError, match=r"corrupt shop snapshot: .*item_counts"):
        ShopSnapshot.load(tmp_path)


def test_reference_events_have_an_earlier_event_of_their_user_and_lie_in_the_recent_share(
    shop: Dataset,
) -> None:
    # Times are 0 1 2 3 | 0 1 | 0; the median is 1, and each user's first event never qualifies.
    assert reference_events(shop, 10, recent_share=0.5).tolist() == [1, 2, 3, 5]
    picked = reference_events(shop, 2, recent_share=0.5, seed=3)
    assert len(picked) == 2 and set(picked.tolist()) <= {1, 2, 3, 5}
    assert picked.tolist() == sorted(picked.tolist())


def test_reference_events_of_an_empty_shop_are_none() -> None:
    empty = make_shop([[0]], n_items=1)
    empty = empty.with_interactions(empty.interactions.select(np.zeros(1, dtype=bool)))
    assert reference_events(empty, 5).tolist() == []
    assert reference_events(make_shop([[0], [0]], n_items=1), 5, recent_share=1.0).tolist() == []


def test_histories_before_stop_at_the_users_first_event_and_at_the_history_length(shop: Dataset) -> None:
    assert histories_before(shop, np.array([3, 5, 1]), history_length=2).to_lists() == [[1, 2], [2], [0]]
    assert histories_before(shop, np.array([3]), history_length=50).to_lists() == [[0, 1, 2]]
    assert histories_before(shop, np.array([4, 6])).to_lists() == [[], []]


def test_event_histories_are_the_histories_before_sampled_reference_events(shop: Dataset) -> None:
    rows = event_histories(shop, 10, history_length=2, recent_share=1.0)
    assert rows.to_lists() == [[0], [0, 1], [1, 2], [2]]
    assert event_histories(shop, 2, history_length=1, recent_share=1.0, seed=5).lengths.tolist() == [1, 1]


def test_saved_beside_a_model_its_digest_joins_the_folders_so_a_changed_snapshot_is_refused(
    shop: Dataset, tmp_path: Path
) -> None:
    PopularityRecommender().fit(shop).save(tmp_path)
    ShopSnapshot.from_dataset(shop).save(tmp_path)  # after the model: it adds its own digest
    assert "snapshot.npz" in read_digests(tmp_path)
    load_model(tmp_path)
    snapshot = tmp_path / SNAPSHOT_FILE
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # the zip comment length: no CRC covers it
    with pytest.raises(ModelFileError, match=r"snapshot\.npz: SHA-256 differs"):
        load_model(tmp_path)


def test_saved_alone_it_writes_no_digests(shop: Dataset, tmp_path: Path) -> None:
    ShopSnapshot.from_dataset(shop).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SNAPSHOT_FILE]
