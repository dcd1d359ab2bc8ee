"""Tests of recdrill.models.sasrec.network: the causal block and the SASRec network's encoding and scores."""

from __future__ import annotations

import pytest
import torch

from recdrill.models.sasrec.network import CausalBlock, SASRecNet


def net(n_items: int = 8, seed: int = 0, **sizes: int | float) -> SASRecNet:
    torch.manual_seed(seed)
    options: dict[str, int | float] = {
        "dim": 16,
        "blocks": 2,
        "heads": 2,
        "max_len": 6,
        "dropout": 0.0,
        **sizes,
    }
    return SASRecNet(n_items, **options).eval()  # type: ignore[arg-type]


def test_the_width_must_split_evenly_over_the_heads() -> None:
    with pytest.raises(ValueError, match="dim 10 must be divisible by heads 3"):
        CausalBlock(10, 3, 0.0)


def test_a_block_keeps_the_shape_and_a_query_sees_only_what_the_mask_allows() -> None:
    torch.manual_seed(0)
    block = CausalBlock(8, 2, 0.0).eval()
    x = torch.randn(1, 3, 8)
    causal = torch.ones(3, 3, dtype=torch.bool).tril()[None, None]
    out = block(x, causal)
    assert out.shape == (1, 3, 8)
    changed = x.clone()
    changed[0, 2] += 1.0
    torch.testing.assert_close(block(changed, causal)[0, :2], out[0, :2])
    assert not torch.allclose(block(changed, causal)[0, 2], out[0, 2])


def test_rows_of_padding_get_finite_scores() -> None:
    model = net()
    batch = torch.tensor([[0, 0, 0, 0, 0, 3], [0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        scores = model.score_last(batch, model.item_table())
    assert scores.shape == (3, 8)
    assert torch.isfinite(scores).all()
    assert torch.isfinite(model.encode(batch)).all()


def test_a_later_item_never_changes_an_earlier_positions_hidden_state() -> None:
    model = net()
    with torch.no_grad():
        before = model.encode(torch.tensor([[1, 2, 3, 4]]))
        after = model.encode(torch.tensor([[1, 2, 7, 8]]))
    torch.testing.assert_close(after[:, :2], before[:, :2])
    assert not torch.allclose(after[:, 2], before[:, 2])


def test_left_padding_does_not_change_the_score_of_a_sequence() -> None:
    model = net()
    with torch.no_grad():
        table = model.item_table()
        short = model.score_last(torch.tensor([[2, 5]]), table)
        padded = model.score_last(torch.tensor([[0, 0, 0, 2, 5]]), table)
    torch.testing.assert_close(padded, short)


def test_forward_scores_every_item_with_the_tied_item_table() -> None:
    model = net()
    batch = torch.tensor([[0, 1, 2], [3, 4, 5]])
    with torch.no_grad():
        scores = model(batch)
        hidden = model.encode(batch)[:, -1]
        expected = hidden @ model.item_table()[1:].T
    assert scores.shape == (2, 8)
    torch.testing.assert_close(scores, expected)


def test_sequences_longer_than_max_len_are_refused() -> None:
    with pytest.raises(ValueError, match="sequences of length 7 exceed max_len 6"):
        net().encode(torch.ones(1, 7, dtype=torch.long))


def test_the_padding_row_starts_at_zero_and_weights_start_small() -> None:
    model = net()
    assert torch.equal(model.items.weight[0], torch.zeros(16))
    assert model.items.weight.std().item() < 0.05
    assert model.item_table().shape == (9, 16)


def test_attribute_embeddings_add_the_mean_of_an_items_attributes() -> None:
    torch.manual_seed(0)
    values, offsets = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 2, 3])  # item 0: 0 1; 1: 1; 2: 2
    model = SASRecNet(3, dim=8, blocks=1, heads=1, max_len=4, dropout=0.0, item_attributes=(values, offsets))
    assert model.attributes is not None
    side = model.attributes.weight
    with torch.no_grad():
        table = model.item_table()
        torch.testing.assert_close(table[0], torch.zeros(8))
        torch.testing.assert_close(table[1], model.items.weight[1] + (side[0] + side[1]) / 2)
        torch.testing.assert_close(table[3], model.items.weight[3] + side[2])


def test_an_unknown_price_gets_a_bucket_of_its_own_after_the_known_ones() -> None:
    torch.manual_seed(0)
    model = SASRecNet(
        3, dim=8, blocks=1, heads=1, max_len=4, dropout=0.0, price_buckets=torch.tensor([1, -1, 0])
    )
    assert model.prices is not None and model.n_price_buckets == 2
    prices = model.prices.weight
    assert prices.shape == (3, 8)
    with torch.no_grad():
        table = model.item_table()
        torch.testing.assert_close(table[1], model.items.weight[1] + prices[1])
        torch.testing.assert_close(table[2], model.items.weight[2] + prices[2])
        torch.testing.assert_close(table[3], model.items.weight[3] + prices[0])
