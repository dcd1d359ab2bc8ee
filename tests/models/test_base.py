"""Tests of recdrill.models.base: the shared fit/score/recommend protocol and saving and loading models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.digests import write_digests
from recdrill.errors import ConfigError, ModelFileError, NotFittedError
from recdrill.models.base import (
    FORMAT_VERSION,
    BaseRecommender,
    Recommender,
    as_ragged,
    csr_from_state,
    csr_to_state,
    read_saved,
)
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender
from tests.conftest import make_shop


class Signature(BaseRecommender):
    """Only here to have a constructor with every kind of parameter."""

    def __init__(self, a: int, *args: int, b: int = 1, **options: int) -> None:
        self.a, self.b = a, b


@pytest.fixture
def shop() -> Dataset:
    """Item 2 is bought 4 times, item 1 twice, item 0 once, item 3 never."""
    return make_shop([[2, 2, 2, 1], [1, 0, 2]], n_items=4)


def test_param_names_are_the_constructors_named_arguments_in_order() -> None:
    assert ItemKNNRecommender.param_names() == (
        "neighbours", "window", "backward_weight", "alpha", "shrink", "history_length", "recency_decay",
    )  # fmt: skip
    assert CategoryPopularityRecommender.param_names() == ("prior",)
    assert PopularityRecommender.param_names() == ()
    assert Signature.param_names() == ("a", "b")  # *args and **options are not hyper-parameters


def test_get_params_reads_the_current_values() -> None:
    model = ItemKNNRecommender(neighbours=7)
    model.window = 2
    params = model.get_params()
    assert (params["neighbours"], params["window"], params["alpha"]) == (7, 2, 0.7)
    assert Signature(3, b=4).get_params() == {"a": 3, "b": 4}


def test_fit_records_the_catalogue_and_the_training_data_and_returns_the_model(shop: Dataset) -> None:
    model = PopularityRecommender()
    assert not model.is_fitted()
    assert model.fit(shop) is model and model.is_fitted()
    assert model.n_items_ == 4
    assert (model.fingerprint_, model.trained_on_) == (shop.fingerprint(), shop.interactions_digest())


def test_fitting_on_no_interactions_is_refused(shop: Dataset) -> None:
    empty = shop.with_interactions(shop.interactions.select(np.zeros(7, dtype=bool)))
    with pytest.raises(ConfigError, match="cannot fit PopularityRecommender on toy: it has no interactions"):
        PopularityRecommender().fit(empty)


def test_predicting_or_saving_before_fit_raises_not_fitted(tmp_path: Path) -> None:
    message = r"^This ItemKNNRecommender is not fitted yet: call fit\(\) before using it$"
    with pytest.raises(NotFittedError, match=message):
        ItemKNNRecommender().score([[0]])
    with pytest.raises(AttributeError, match="not fitted"):  # NotFittedError is an AttributeError
        ItemKNNRecommender().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_history_items_must_lie_in_the_catalogue(shop: Dataset) -> None:
    model = PopularityRecommender().fit(shop)
    for bad in ([[4]], [[0, -1]]):
        with pytest.raises(ConfigError, match=r"history item ids must lie in \[0, 4\)"):
            model.score(bad)
    assert model.score([[], [3]]).shape == (2, 4)


def test_recommend_ranks_unseen_items_best_first_and_ties_by_index(shop: Dataset) -> None:
    model = PopularityRecommender().fit(shop)
    recs = model.recommend([[2], []], k=2)
    assert recs.items.tolist() == [[1, 0], [2, 1]]
    np.testing.assert_allclose(recs.scores, [[2 / 7, 1 / 7], [4 / 7, 2 / 7]], rtol=1e-6)
    assert recs.items.dtype == np.int64 and recs.scores.dtype == np.float32


def test_recommend_can_keep_seen_items_and_caps_k_at_the_catalogue(shop: Dataset) -> None:
    model = PopularityRecommender().fit(shop)
    assert model.recommend([[2]], k=2, exclude_seen=False).items.tolist() == [[2, 1]]
    everything = model.recommend(Ragged.from_lists([[2]]), k=10)
    assert everything.items.tolist() == [[1, 0, 3, 2]]  # the seen item last, at -inf
    assert everything.scores[0, -1] == -np.inf


@pytest.mark.parametrize("k", [0, -3])
def test_recommend_refuses_a_non_positive_k(shop: Dataset, k: int) -> None:
    with pytest.raises(ConfigError, match=f"k must be a positive integer, got {k}"):
        PopularityRecommender().fit(shop).recommend([[0]], k=k)


def test_save_writes_the_metadata_and_load_gives_identical_scores(shop: Dataset, tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbours=3, window=2).fit(shop)
    model.save(tmp_path / "nested" / "m")
    meta = json.loads((tmp_path / "nested" / "m" / "model.json").read_text())
    assert meta == {
        "format_version": FORMAT_VERSION,
        "kind": "itemknn",
        "params": model.get_params(),
        "n_items": 4,
        "fingerprint": shop.fingerprint(),
        "trained_on": shop.interactions_digest(),
    }
    loaded = ItemKNNRecommender.load(tmp_path / "nested" / "m")
    assert loaded.get_params() == model.get_params() and loaded.trained_on_ == model.trained_on_
    histories = [[0], [2, 1], []]
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))


def test_a_model_saved_before_trained_on_existed_loads_with_an_empty_digest(
    shop: Dataset, tmp_path: Path
) -> None:
    PopularityRecommender().fit(shop).save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    del meta["trained_on"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    write_digests(tmp_path)  # as an older save would have written them
    assert PopularityRecommender.load(tmp_path).trained_on_ == ""


def test_read_saved_refuses_what_is_not_a_saved_model_folder(shop: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"nowhere: no such model folder$"):
        read_saved(tmp_path / "nowhere")
    with pytest.raises(ModelFileError, match=r"missing model\.json: not a saved recdrill model$"):
        read_saved(tmp_path)
    PopularityRecommender().fit(shop).save(tmp_path)
    meta, state = read_saved(tmp_path)
    assert meta["kind"] == "pop" and list(state) == ["share"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (b"\xff\xfe not text", r"model\.json: corrupt metadata"),
        (b"[1, 2]", r"model\.json: metadata lacks kind, params, n_items or fingerprint"),
        (
            json.dumps(
                {"kind": "pop", "params": {}, "n_items": 4, "fingerprint": "x", "format_version": 2}
            ).encode(),
            r"model\.json: format version 2 is not 1",
        ),
        (
            json.dumps({"kind": "pop", "params": {}, "n_items": 4, "fingerprint": "x"}).encode(),
            r"model\.json: format version None is not 1",
        ),
    ],
)
def test_bad_metadata_is_a_model_file_error_naming_the_file(
    shop: Dataset, tmp_path: Path, metadata: bytes, message: str
) -> None:
    PopularityRecommender().fit(shop).save(tmp_path)
    (tmp_path / "model.json").write_bytes(metadata)
    write_digests(tmp_path)  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match=message):
        read_saved(tmp_path)


def test_saved_parameters_that_do_not_fit_the_class_are_refused(shop: Dataset, tmp_path: Path) -> None:
    ItemKNNRecommender().fit(shop).save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["params"]["colour"] = "red"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    write_digests(tmp_path)  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match=r"saved parameters do not fit ItemKNNRecommender: .*colour"):
        ItemKNNRecommender.load(tmp_path)


def test_state_missing_an_array_is_refused(shop: Dataset, tmp_path: Path) -> None:
    CategoryPopularityRecommender().fit(shop).save(tmp_path)
    state = dict(np.load(tmp_path / "state.npz"))
    del state["group_items.indptr"]
    np.savez(tmp_path / "state.npz", **state)
    write_digests(tmp_path)  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match=r"model state lacks array 'group_items\.indptr'"):
        CategoryPopularityRecommender.load(tmp_path)


def test_sparse_matrices_round_trip_through_plain_arrays() -> None:
    matrix = sp.csr_matrix(np.array([[0, 1.5, 0], [0, 0, 0], [2.0, 0, 3.0], [0, 0, 0]], dtype=np.float32))
    state = csr_to_state("m", matrix)
    assert sorted(state) == ["m.data", "m.indices", "m.indptr", "m.shape"]
    assert state["m.shape"].tolist() == [4, 3]
    back = csr_from_state("m", state)
    assert back.shape == (4, 3)
    np.testing.assert_array_equal(back.toarray(), matrix.toarray())


def test_as_ragged_keeps_a_ragged_and_converts_lists() -> None:
    rows = Ragged.from_lists([[1], []])
    assert as_ragged(rows) is rows
    assert as_ragged([[3, 4], [], [5]]).to_lists() == [[3, 4], [], [5]]


def test_every_model_satisfies_the_recommender_protocol() -> None:
    assert isinstance(PopularityRecommender(), Recommender)
    assert isinstance(ItemKNNRecommender(), Recommender)
    assert not isinstance(object(), Recommender)
