"""Sequence augmentations for training: crop, mask, reorder, and substitution within a group.

Each function takes item sequences (a :class:`Ragged`), a rate and a seeded generator and returns
new sequences; none changes its input. They are applied to training sequences only, never to the
held-out items a model is judged on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError


def crop(sequences: Ragged, keep: float, rng: np.random.Generator) -> Ragged:
    """A random contiguous stretch of each row holding ``ceil(keep * length)`` items (CL4SRec's crop).

    Example:
        >>> crop(Ragged.from_lists([[1, 2, 3, 4]]), 0.5, np.random.default_rng(0)).lengths.tolist()
        [2]
    """
    _check_rate("keep", keep, allow_one=True)
    lengths = sequences.lengths
    kept = np.maximum(1, np.ceil(keep * lengths)).astype(np.int64) * (lengths > 0)
    starts = sequences.indptr[:-1] + (rng.random(len(lengths)) * (lengths - kept + 1)).astype(np.int64)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(kept, out=indptr[1:])
    offsets = np.repeat(starts - indptr[:-1], kept) + np.arange(indptr[-1])
    return Ragged(indptr, sequences.values[offsets])


def mask(sequences: Ragged, rate: float, rng: np.random.Generator) -> Ragged:
    """Drop each item with probability ``rate``, keeping at least one item of a non-empty row."""
    _check_rate("rate", rate)
    drop = rng.random(len(sequences.values)) < rate
    last = sequences.indptr[1:][sequences.lengths > 0] - 1
    drop[last] = False  # never empty a row: keep each row's last item
    rows = sequences.row_ids[~drop]
    return Ragged.from_groups(rows, sequences.values[~drop], len(sequences))


def reorder(sequences: Ragged, span: float, rng: np.random.Generator) -> Ragged:
    """Shuffle a random stretch of ``ceil(span * length)`` items in each row (CL4SRec's reorder)."""
    _check_rate("span", span, allow_one=True)
    lengths = sequences.lengths
    width = np.maximum(1, np.ceil(span * lengths)).astype(np.int64) * (lengths > 0)
    start = (rng.random(len(lengths)) * (lengths - width + 1)).astype(np.int64)
    position = np.arange(len(sequences.values)) - np.repeat(sequences.indptr[:-1], lengths)
    rows = sequences.row_ids
    inside = (position >= start[rows]) & (position < start[rows] + width[rows])
    # Sort key: rows stay in order; inside the stretch, positions get random ranks.
    key = np.where(
        inside, start[rows] + rng.random(len(position)) * 0.999 * width[rows], position.astype(np.float64)
    )
    order = np.lexsort((key, rows))
    return Ragged(sequences.indptr.copy(), sequences.values[order])


def substitute(sequences: Ragged, groups: np.ndarray, rate: float, rng: np.random.Generator) -> Ragged:
    """Replace each item, with probability ``rate``, by a random item of the same group.

    ``groups[i]`` is item ``i``'s group (category or brand; -1 = none, never substituted).
    """
    _check_rate("rate", rate)
    values = sequences.values.astype(np.int64)
    item_group = groups[values]
    chosen = (rng.random(len(values)) < rate) & (item_group >= 0)
    members = np.argsort(groups, kind="stable")
    known = members[groups[members] >= 0]
    sorted_groups = groups[known]
    first = np.searchsorted(sorted_groups, item_group[chosen], side="left")
    size = np.searchsorted(sorted_groups, item_group[chosen], side="right") - first
    pick = known[first + (rng.random(int(chosen.sum())) * size).astype(np.int64)]
    out = values.copy()
    out[chosen] = pick
    return Ragged(sequences.indptr.copy(), out.astype(np.int32))


@dataclass(frozen=True)
class Augmenter:
    """Which augmentations a trainer applies, each off at 0. One call yields one augmented copy.

    Attributes:
        crop_keep: share of a row a crop keeps (0 = no crop).
        mask_rate: share of items dropped.
        reorder_span: share of a row that is shuffled.
        category_rate, brand_rate: share of items swapped for another of the same category / brand.
    """

    crop_keep: float = 0.0
    mask_rate: float = 0.0
    reorder_span: float = 0.0
    category_rate: float = 0.0
    brand_rate: float = 0.0

    @property
    def active(self) -> bool:
        return any(
            v > 0
            for v in (self.crop_keep, self.mask_rate, self.reorder_span, self.category_rate, self.brand_rate)
        )

    def __call__(
        self,
        sequences: Ragged,
        rng: np.random.Generator,
        category: np.ndarray | None = None,
        brand: np.ndarray | None = None,
    ) -> Ragged:
        out = sequences
        if self.category_rate > 0 and category is not None:
            out = substitute(out, category, self.category_rate, rng)
        if self.brand_rate > 0 and brand is not None:
            out = substitute(out, brand, self.brand_rate, rng)
        if self.crop_keep > 0:
            out = crop(out, self.crop_keep, rng)
        if self.mask_rate > 0:
            out = mask(out, self.mask_rate, rng)
        if self.reorder_span > 0:
            out = reorder(out, self.reorder_span, rng)
        return out


def _check_rate(name: str, value: float, allow_one: bool = False) -> None:
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (value > 0.0 and upper_ok):
        bound = "(0, 1]" if allow_one else "(0, 1)"
        raise ConfigError(f"augmentation {name} must be in {bound}, got {value}")
