"""The Transformer's item-to-item mix: a proper mixture, a weight chosen on validation, saved and loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recdrill.data.dataset import Dataset
from recdrill.data.ragged import Ragged
from recdrill.data.splits import EvalFold
from recdrill.errors import ConfigError
from recdrill.models.factory import load_model
from recdrill.models.sasrec.estimator import SASRecRecommender
from recdrill.models.sasrec.transition_mix import choose_weight, mix_scores

FAST = {"dim": 32, "blocks": 1, "heads": 2, "max_len": 8, "dropout": 0.0, "lr": 3e-3, "batch_size": 32}


def test_the_mix_is_a_distribution_and_finite_where_one_part_is_zero() -> None:
    logits = np.array([[2.0, 0.0, -1.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    transitions = np.array([[0.0, 3.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mixed = mix_scores(logits, transitions, 0.3)
    assert np.isfinite(mixed).all()
    np.testing.assert_allclose(np.exp(mixed).sum(axis=1), 1.0, rtol=1e-5)
    # Row 0: 0.3 of the mass follows the transitions (3:1 between items 1 and 2).
    softmax = np.exp(logits[0]) / np.exp(logits[0]).sum()
    expected = 0.7 * softmax + 0.3 * np.array([0, 0.75, 0.25, 0])
    np.testing.assert_allclose(np.exp(mixed[0]), expected, rtol=1e-5)
    # Weight 0 leaves the network's scores as they are.
    np.testing.assert_array_equal(mix_scores(logits, transitions, 0.0), logits.astype(np.float32))


def _fold(targets: list[int], n_items: int) -> EvalFold:
    histories = Ragged.from_lists([[0]] * len(targets))
    return EvalFold("validation", None, np.arange(len(targets)), histories, np.array(targets))  # type: ignore[arg-type]


def test_the_weight_that_ranks_the_validation_targets_best_is_chosen() -> None:
    n_items, targets = 6, [3, 3, 4, 4]
    fold = _fold(targets, n_items)

    def network(histories: Ragged) -> np.ndarray:  # prefers item 5, then 1 and 2, targets last
        return np.tile(np.array([0.0, 2.0, 2.0, -3.0, -3.0, 4.0]), (len(histories), 1))

    def helpful(histories: Ragged) -> np.ndarray:  # puts the targets first
        return np.tile(np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.0]), (len(histories), 1))

    def useless(histories: Ragged) -> np.ndarray:  # agrees with the network's wrong preference
        return np.tile(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), (len(histories), 1))

    weight, ndcg = choose_weight(network, helpful, fold, grid=(0.0, 0.1, 0.5))
    assert weight > 0 and ndcg[weight] > ndcg[0.0]
    weight, ndcg = choose_weight(network, useless, fold, grid=(0.0, 0.1, 0.5))
    assert weight == 0.0  # ties go to the smaller weight: the network alone
    assert ndcg[0.0] == ndcg[0.5]


@pytest.mark.parametrize("bad", [1.0, -0.1, "always"])
def test_a_bad_transition_mix_is_refused_naming_it(chain_shop: Dataset, bad: object) -> None:
    with pytest.raises(ConfigError, match="transition_mix"):
        SASRecRecommender(**FAST, max_epochs=1, transition_mix=bad).fit(chain_shop)  # type: ignore[arg-type]


def test_without_validation_auto_serves_the_network_alone(chain_shop: Dataset) -> None:
    model = SASRecRecommender(**FAST, max_epochs=1, validation_share=0.0).fit(chain_shop)
    assert model.mix_ == 0.0 and model.transitions_ is None


def test_a_mixed_model_saves_and_loads_to_identical_scores(chain_shop: Dataset, tmp_path: Path) -> None:
    model = SASRecRecommender(**FAST, max_epochs=2, patience=2, transition_mix=0.25).fit(chain_shop)
    assert model.mix_ == 0.25 and model.transitions_ is not None
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    histories = [[2, 3], [10, 11, 12], []]
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))
    # The mix changes the scores: the saved model is not the network alone.
    network_only = SASRecRecommender(**FAST, max_epochs=2, patience=2, transition_mix=0.0).fit(chain_shop)
    assert not np.allclose(network_only.score(histories), model.score(histories))


def test_auto_records_every_weight_it_tried_on_validation(chain_shop: Dataset) -> None:
    model = SASRecRecommender(**FAST, max_epochs=2, patience=2).fit(chain_shop)
    tried = model.training_log_["val_ndcg10_by_mix"]
    assert 0.0 in tried and len(tried) > 1
    assert model.mix_ == max(tried, key=lambda w: (tried[w], -w))
