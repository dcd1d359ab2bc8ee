from __future__ import annotations

import numpy as np
import pytest

from recdrill.data.augment import Augmenter, crop, mask, reorder, substitute
from recdrill.data.ragged import Ragged
from recdrill.errors import ConfigError

ROWS = Ragged.from_lists([list(range(10))] * 400 + [[], [42]])


def test_crop_keeps_a_contiguous_stretch_of_the_asked_length() -> None:
    out = crop(ROWS, 0.3, np.random.default_rng(0))
    assert out.lengths.tolist() == [3] * 400 + [0, 1]
    starts = {row[0] for row in out.to_lists()[:400]}
    assert all(np.array_equal(row, np.arange(row[0], row[0] + 3)) for row in out.to_lists()[:400])
    assert starts == set(range(8))  # every possible start is drawn


def test_mask_drops_about_the_rate_and_never_empties_a_row() -> None:
    out = mask(ROWS, 0.5, np.random.default_rng(1))
    assert 4.5 < out.lengths[:400].mean() < 6.5  # last item always kept, others kept half the time
    assert out.to_lists()[400:] == [[], [42]]
    assert all(row[-1] == 9 for row in out.to_lists()[:400])


def test_reorder_permutes_a_stretch_only() -> None:
    out = reorder(ROWS, 0.5, np.random.default_rng(2)).to_lists()
    assert all(sorted(row) == list(range(10)) for row in out[:400])
    changed = [i for i, row in enumerate(out[:400]) if row != list(range(10))]
    assert len(changed) > 350
    for row in out[:400]:  # outside a stretch of 5 every item stays in place
        assert sum(a != b for a, b in zip(row, range(10), strict=True)) <= 5


def test_substitute_stays_within_the_group_and_skips_ungrouped_items() -> None:
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1] + [-1] * 33)
    out = substitute(ROWS, groups, 0.9, np.random.default_rng(3))
    before, after = ROWS.values, out.values
    assert np.all(groups[after[before < 9]] == groups[before[before < 9]])
    assert np.all(after[before == 9] == 9)  # item 9 has no group
    assert np.mean(after != before) > 0.4


def test_augmenter_off_by_default_and_rates_are_checked() -> None:
    assert not Augmenter().active
    assert Augmenter(mask_rate=0.2).active
    with pytest.raises(ConfigError, match=r"augmentation rate must be in \(0, 1\), got 1.0"):
        mask(ROWS, 1.0, np.random.default_rng(0))
