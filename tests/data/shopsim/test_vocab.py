"""Tests of recdrill.data.shopsim.vocab: the words of the shop's categories, titles and brand names."""

from __future__ import annotations

import pytest

from recdrill.data.shopsim.vocab import (
    BRAND_ENDINGS,
    BRAND_MIDDLES,
    BRAND_ONSETS,
    MAX_BRANDS,
    MAX_SUBCATEGORIES,
    MAX_TOP_CATEGORIES,
    TOP_CATEGORIES,
    brand_name,
)


def test_the_sizes_of_the_vocabulary() -> None:
    assert (MAX_TOP_CATEGORIES, MAX_SUBCATEGORIES, MAX_BRANDS) == (12, 6, 3_600)
    assert len(BRAND_ONSETS) * len(BRAND_MIDDLES) * len(BRAND_ENDINGS) == MAX_BRANDS


def test_every_top_category_has_six_leaves_of_three_nouns_eight_adjectives_and_six_variants() -> None:
    for top in TOP_CATEGORIES:
        assert len(top.leaves) == 6, top.name
        assert all(len(nouns) == 3 for _, nouns in top.leaves), top.name
        assert len(top.adjectives) == 8 and len(top.variants) == 6, top.name
        assert top.median_price > 0


def test_the_compact_source_form_is_parsed_into_names_nouns_and_variants() -> None:
    beauty = TOP_CATEGORIES[0]
    assert beauty.leaves[4] == ("Nail Care", ("Nail Polish", "Cuticle Oil", "Nail File"))
    assert beauty.variants[3] == "Travel Size"  # variants are split on commas, keeping their spaces
    assert beauty.adjectives[5] == "Long-Lasting"  # adjectives are split on spaces
    assert [top.name for top in TOP_CATEGORIES[-3:]] == ["Pets", "Grocery", "Office"]
    assert TOP_CATEGORIES[4].median_price == 90.0


def test_leaf_names_are_unique_across_the_shop() -> None:
    names = [leaf for top in TOP_CATEGORIES for leaf, _ in top.leaves]
    assert len(names) == len(set(names)) == 72


@pytest.mark.parametrize(
    ("code", "name"),
    [(0, "Lumora"), (1, "Lumox"), (12, "Lurara"), (180, "Vemora"), (MAX_BRANDS - 1, "Hozeo")],
)
def test_brand_names_count_through_onset_middle_and_ending(code: int, name: str) -> None:
    assert brand_name(code) == name


def test_every_brand_code_gives_a_distinct_capitalised_name() -> None:
    names = [brand_name(code) for code in range(MAX_BRANDS)]
    assert len(set(names)) == MAX_BRANDS
    assert all(name[0].isupper() and name[1:].islower() for name in names)
