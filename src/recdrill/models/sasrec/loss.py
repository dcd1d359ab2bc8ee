"""The training wrapper: next-item cross-entropy over every non-padded position.

Kept apart from the network so the same network serves; and a ``Module`` of its own so that
``DistributedDataParallel`` can wrap it (DDP synchronises gradients for what runs in ``forward``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recdrill.models.sasrec.network import SASRecNet


class NextItemLoss(nn.Module):
    """Full-softmax cross-entropy, or a sampled softmax against ``negatives`` shared items.

    Full softmax scores every position against all items (``positions x items`` per step); the
    sampled form scores against ``negatives`` uniform draws shared by the batch, with accidental
    hits (a draw equal to the target) removed.
    """

    def __init__(self, net: SASRecNet, negatives: int = 0) -> None:
        super().__init__()
        self.net = net
        self.negatives = negatives

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """inputs, targets: ``[B, L]`` shifted ids, 0 = padding; returns the mean loss."""
        table = self.net.item_table()
        hidden = self.net.encode(inputs, table)
        real = targets != 0
        states, positives = hidden[real], targets[real]
        if self.negatives <= 0:
            return F.cross_entropy(states @ table[1:].T, positives - 1)
        drawn = torch.randint(1, self.net.n_items + 1, (self.negatives,), device=inputs.device)
        positive_logit = (states * table[positives]).sum(-1, keepdim=True)
        negative_logits = (states @ table[drawn].T).masked_fill(
            drawn[None, :] == positives[:, None], float("-inf")
        )
        logits = torch.cat([positive_logit, negative_logits], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(states), dtype=torch.long, device=inputs.device))
