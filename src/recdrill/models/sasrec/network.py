"""A causal self-attention sequential recommender network (SASRec family) in PyTorch.

The module only maps item sequences to scores; losses live in the training code, so the same
module trains and serves. Items are shifted by one inside the network: index 0 is padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalBlock(nn.Module):
    """Pre-norm Transformer block: masked self-attention then a GELU feed-forward, both residual.

    Written out (not ``nn.TransformerEncoderLayer``) so the mask is one boolean tensor that always
    lets a position see itself: a left-padded row then never has every key masked, which is what
    makes PyTorch's encoder fast path return NaN (FIELD-NOTES).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: [B, L, D]; mask: [B, 1, L, L] boolean, True where attention is allowed."""
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, dim // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
        )
        x = x + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, dim)))
        out: torch.Tensor = x + self.dropout(self.ff(self.norm2(x)))
        return out


class SASRecNet(nn.Module):
    """Item (+ optional attribute) embeddings, learned positions, causal blocks, tied output.

    Args:
        n_items: catalogue size (dense ids ``0..n_items-1``).
        dim, blocks, heads, max_len, dropout: the usual SASRec sizes.
        item_attributes: optional attribute ids per item as CSR ``(values, offsets)`` (``offsets`` has
            one start per item); each item's vector then adds the mean of its attributes' embeddings,
            in the input and in the output table, so rare items borrow strength from brand and category.
        price_buckets: optional price bucket per item (``-1`` = unknown price); each item's vector then
            adds its bucket's embedding.

    Two augmentations act on the item table while training (both off at 0): ``attribute_mask_rate``
    drops an item's attribute vector with that probability at each step, so the model cannot lean on
    side information alone; ``price_jitter`` moves an item's price bucket one step up or down with that
    probability, so it tolerates price changes (promotions, repricing) it has not seen.
    """

    def __init__(
        self,
        n_items: int,
        dim: int = 64,
        blocks: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.3,
        item_attributes: tuple[torch.Tensor, torch.Tensor] | None = None,
        price_buckets: torch.Tensor | None = None,
        attribute_mask_rate: float = 0.0,
        price_jitter: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.attributes: nn.EmbeddingBag | None = None
        if item_attributes is not None:
            values, offsets = item_attributes
            self.register_buffer("attribute_values", values.long(), persistent=False)
            self.register_buffer("attribute_offsets", offsets.long(), persistent=False)
            n_attributes = int(values.max()) + 1 if len(values) else 1
            self.attributes = nn.EmbeddingBag(n_attributes, dim, mode="mean")
        self.prices: nn.Embedding | None = None
        if price_buckets is not None:
            self.n_price_buckets = int(price_buckets.max()) + 1 if len(price_buckets) else 1
            # Unknown prices get a bucket of their own, after the real ones.
            known = torch.where(price_buckets >= 0, price_buckets.long(), self.n_price_buckets)
            self.register_buffer("price_bucket", known, persistent=False)
            self.prices = nn.Embedding(self.n_price_buckets + 1, dim)
        self.attribute_mask_rate = attribute_mask_rate
        self.price_jitter = price_jitter
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(CausalBlock(dim, heads, dropout) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # N(0, 0.02), not nn.Embedding's N(0, 1): with tied output weights the latter trains badly.
        for module in self.modules():
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag, nn.Linear)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        """Every item's vector, ``[n_items + 1, dim]`` with row 0 the padding."""
        table = self.items.weight
        if self.attributes is not None:
            side = self.attributes(self.attribute_values, self.attribute_offsets)
            if self.training and self.attribute_mask_rate > 0:
                keep = torch.rand(len(side), 1, device=side.device) >= self.attribute_mask_rate
                side = side * keep
            table = table + F.pad(side, (0, 0, 1, 0))
        if self.prices is not None:
            bucket: torch.Tensor = self.price_bucket  # type: ignore[assignment]  # a buffer
            if self.training and self.price_jitter > 0:
                step = torch.randint(-1, 2, bucket.shape, device=bucket.device)
                moved = torch.rand(bucket.shape, device=bucket.device) < self.price_jitter
                known = bucket < self.n_price_buckets
                shifted = (bucket + step).clamp(0, self.n_price_buckets - 1)
                bucket = torch.where(moved & known, shifted, bucket)
            table = table + F.pad(self.prices(bucket), (0, 0, 1, 0))
        return table

    def encode(self, sequences: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[B, L, dim]`` of left-padded sequences ``[B, L]`` of shifted ids (0 = pad)."""
        length = sequences.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequences of length {length} exceed max_len {self.max_len}")
        table = self.item_table() if table is None else table
        positions = torch.arange(self.max_len - length, self.max_len, device=sequences.device)
        x = self.input_dropout(table[sequences] + self.positions(positions)[None])
        real = sequences != 0
        causal = torch.ones(length, length, dtype=torch.bool, device=sequences.device).tril()
        mask = (causal[None] & real[:, None, :]) | torch.eye(
            length, dtype=torch.bool, device=sequences.device
        )
        mask = mask[:, None]
        for layer in self.layers:
            x = layer(x, mask)
        hidden: torch.Tensor = self.final_norm(x)
        return hidden

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """Scores of every item as the next one after each sequence: ``[B, n_items]``."""
        return self.score_last(sequences, self.item_table())

    def score_last(self, sequences: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``forward`` with the item table computed once by the caller (it is the same for every batch)."""
        last = self.encode(sequences, table)[:, -1]
        return last @ table[1:].T
