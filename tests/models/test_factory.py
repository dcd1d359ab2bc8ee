"""Tests of recdrill.models.factory: models by kind name, built fresh or loaded and checked against data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.digests import DIGESTS_FILE, write_digests
from recdrill.errors import ConfigError, ModelFileError
from recdrill.models.factory import MODEL_KINDS, load_model, make_model, model_class, seal_model
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender
from tests.conftest import make_shop


def test_each_kind_names_its_class() -> None:
    assert sorted(MODEL_KINDS) == ["catpop", "itemknn", "pop", "sasrec"]
    assert model_class("pop") is PopularityRecommender
    assert model_class("catpop") is CategoryPopularityRecommender
    assert model_class("itemknn") is ItemKNNRecommender
    assert model_class("sasrec").__name__ == "SASRecRecommender"


def test_an_unknown_kind_lists_the_known_ones_sorted() -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown model 'knn'; choose one of catpop, itemknn, pop, sasrec$"
    ):
        model_class("knn")


def test_make_model_builds_an_unfitted_model_with_default_parameters() -> None:
    model = make_model("itemknn")
    assert isinstance(model, ItemKNNRecommender) and not model.is_fitted()
    assert model.get_params() == ItemKNNRecommender().get_params()
    assert make_model("itemknn") is not model


def test_load_model_picks_the_class_from_the_saved_kind(chain_shop: Dataset, tmp_path: Path) -> None:
    CategoryPopularityRecommender(prior=0.5).fit(chain_shop).save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is CategoryPopularityRecommender and loaded.get_params() == {"prior": 0.5}
    assert load_model(tmp_path / "m", chain_shop).fingerprint_ == chain_shop.fingerprint()


def test_load_model_refuses_an_unknown_saved_kind(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["kind"] = "bert"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    write_digests(tmp_path)  # a manifest rewritten too: the checks behind the digests still hold
    with pytest.raises(ModelFileError, match="unknown model kind 'bert'"):
        load_model(tmp_path)


def test_load_model_refuses_a_model_of_another_catalogue_naming_both_fingerprints(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    model = PopularityRecommender().fit(chain_shop)
    model.save(tmp_path)
    other = make_shop([[0, 1]], n_items=3)
    message = (
        rf"model was trained on a different catalogue \(fingerprint {model.fingerprint_}, "
        rf"data toy has {other.fingerprint()}\)"
    )
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path, other)


def test_the_catalogue_check_is_on_item_ids_not_on_interactions(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path)
    fewer = chain_shop.with_interactions(chain_shop.interactions.select(np.arange(10)))
    loaded = load_model(tmp_path, fewer)
    np.testing.assert_array_equal(loaded.score([[]]), PopularityRecommender().fit(chain_shop).score([[]]))


def test_seal_model_gives_an_older_folder_and_its_fallback_digests_then_loads_it(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path)
    ItemKNNRecommender().fit(chain_shop).save(tmp_path / "fallback")
    for folder in (tmp_path, tmp_path / "fallback"):
        (folder / DIGESTS_FILE).unlink()  # as saved before recdrill wrote digests
    assert seal_model(tmp_path) == [tmp_path, tmp_path / "fallback"]
    assert load_model(tmp_path).kind == "pop" and load_model(tmp_path / "fallback").kind == "itemknn"
    assert seal_model(tmp_path) == []  # sealed already, and its files match


def test_seal_model_never_seals_over_a_changed_file(chain_shop: Dataset, tmp_path: Path) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path)
    (tmp_path / "model.json").write_text((tmp_path / "model.json").read_text() + "\n")
    with pytest.raises(ModelFileError, match=r"model\.json: SHA-256 differs"):
        seal_model(tmp_path)


def test_seal_model_leaves_no_digests_on_a_folder_that_does_not_load(
    chain_shop: Dataset, tmp_path: Path
) -> None:
    PopularityRecommender().fit(chain_shop).save(tmp_path)
    (tmp_path / DIGESTS_FILE).unlink()
    np.savez(tmp_path / "state.npz", share=np.zeros(3, dtype=np.float32))  # the wrong size
    with pytest.raises(ModelFileError, match="model state is inconsistent"):
        seal_model(tmp_path)
    assert not (tmp_path / DIGESTS_FILE).exists()
    with pytest.raises(ModelFileError, match="no such model folder"):
        seal_model(tmp_path / "nowhere")
