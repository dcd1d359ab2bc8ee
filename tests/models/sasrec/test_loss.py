"""Tests of recdrill.models.sasrec.loss: full and sampled softmax next-item losses over real positions."""

from __future__ import annotations

import math

import torch

from recdrill.models.sasrec.loss import NextItemLoss
from recdrill.models.sasrec.network import SASRecNet

INPUTS = torch.tensor([[0, 1, 2, 3], [0, 0, 4, 5]])
TARGETS = torch.tensor([[0, 2, 3, 4], [0, 0, 5, 6]])


def quiet_net(n_items: int = 6, seed: int = 0) -> SASRecNet:
    """A small network in eval mode, so that its forward pass draws no random numbers."""
    torch.manual_seed(seed)
    return SASRecNet(n_items, dim=8, blocks=1, heads=2, max_len=4, dropout=0.0).eval()


def hand_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of ``logsumexp(logits) - logits[label]`` over the rows."""
    picked = logits.gather(1, labels[:, None]).squeeze(1)
    return (torch.logsumexp(logits, dim=1) - picked).mean()


def test_full_softmax_is_cross_entropy_over_every_item_at_the_real_positions() -> None:
    net = quiet_net()
    loss = NextItemLoss(net, negatives=0)(INPUTS, TARGETS)
    with torch.no_grad():
        table = net.item_table()
        hidden = net.encode(INPUTS, table)
        real = TARGETS != 0
        logits = hidden[real] @ table[1:].T  # scores of items 0..5 (ids 1..6)
        expected = hand_cross_entropy(logits, TARGETS[real] - 1)
    assert loss.shape == () and real.sum() == 5
    torch.testing.assert_close(loss, expected)


def test_left_padding_without_targets_leaves_the_loss_of_a_row_unchanged() -> None:
    net = quiet_net()
    module = NextItemLoss(net)
    base = module(INPUTS, TARGETS)
    # The same row, padded to four or not padded at all, gives the same loss; a second row changes it.
    single = module(INPUTS[1:], TARGETS[1:])
    alone = module(torch.tensor([[4, 5]]), torch.tensor([[5, 6]]))
    torch.testing.assert_close(single, alone)
    assert not torch.isclose(base, single)


def test_sampled_softmax_scores_the_target_against_the_drawn_negatives() -> None:
    net = quiet_net()
    torch.manual_seed(123)
    loss = NextItemLoss(net, negatives=3)(INPUTS, TARGETS)
    torch.manual_seed(123)
    drawn = torch.randint(1, 7, (3,))  # the same draw the loss made
    with torch.no_grad():
        table = net.item_table()
        real = TARGETS != 0
        states, positives = net.encode(INPUTS, table)[real], TARGETS[real]
        positive = (states * table[positives]).sum(-1, keepdim=True)
        negative = (states @ table[drawn].T).masked_fill(drawn[None, :] == positives[:, None], -math.inf)
        expected = hand_cross_entropy(
            torch.cat([positive, negative], dim=1), torch.zeros(5, dtype=torch.long)
        )
    torch.testing.assert_close(loss, expected)


def test_a_drawn_negative_equal_to_the_target_does_not_count() -> None:
    # With a single item every draw is the target itself: all negatives are accidental hits, so the
    # target competes with nothing and the loss is exactly zero (log(1 + 4) if hits were kept).
    torch.manual_seed(0)
    net = SASRecNet(1, dim=8, blocks=1, heads=1, max_len=3, dropout=0.0).eval()
    loss = NextItemLoss(net, negatives=4)(torch.tensor([[0, 1, 1]]), torch.tensor([[1, 1, 1]]))
    assert loss.item() == 0.0


def test_the_loss_trains_the_network_it_wraps() -> None:
    net = quiet_net().train()
    module = NextItemLoss(net)
    assert list(module.parameters()) == list(net.parameters())
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    first = module(INPUTS, TARGETS).item()
    for _ in range(30):
        optimizer.zero_grad()
        module(INPUTS, TARGETS).backward()
        optimizer.step()
    assert module(INPUTS, TARGETS).item() < 0.5 * first
