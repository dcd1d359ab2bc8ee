"""Turning ragged item histories into left-padded tensor batches for the sequence model.

Sequences are bucketed by length so each batch pads only to its own longest row: on shop data most
histories are short, and attention cost grows with the square of the padded length.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from recdrill.data.ragged import Ragged


def left_pad(rows: Ragged, length: int, shift: int = 1) -> np.ndarray:
    """Each row's last ``length`` values, right-aligned in a ``[n, length]`` int64 array, 0 = pad.

    Values are shifted by ``shift`` so that 0 stays free for padding.

    Example:
        >>> left_pad(Ragged.from_lists([[4, 5, 6], [7]]), 2).tolist()
        [[6, 7], [0, 8]]
    """
    recent = rows.last(length)
    out = np.zeros((len(recent), length), dtype=np.int64)
    lengths = recent.lengths
    row = np.repeat(np.arange(len(recent)), lengths)
    column = (
        length
        - np.repeat(lengths, lengths)
        + (np.arange(len(recent.values)) - np.repeat(recent.indptr[:-1], lengths))
    )
    out[row, column] = recent.values.astype(np.int64) + shift
    return out


def training_batches(
    sequences: Ragged, batch_size: int, max_len: int, rng: np.random.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled ``(inputs, targets)`` batches: every position predicts the item after it.

    Each row holds a user's last ``max_len + 1`` items; inputs are all but the last, targets all but
    the first, both left-padded to the batch's longest row.
    """
    usable = np.flatnonzero(sequences.lengths >= 2)
    lengths = np.minimum(sequences.lengths[usable], max_len + 1)
    # Sort by length (ties broken at random), cut into batches, then shuffle the batch order.
    order = usable[np.lexsort((rng.random(len(usable)), lengths))]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for index in rng.permutation(len(batches)):
        rows = batches[index]
        longest = int(min(sequences.lengths[rows].max(), max_len + 1))
        padded = torch.from_numpy(left_pad(sequences.take(rows), longest))
        yield padded[:, :-1], padded[:, 1:]
