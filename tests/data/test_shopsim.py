from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from recdrill.data.dataset import Dataset, EventType, Relevance
from recdrill.data.shopsim import DriftConfig, ShopSim, ShopSimConfig
from recdrill.data.shopsim.config import START_DATE
from recdrill.data.shopsim.vocab import MAX_BRANDS, TOP_CATEGORIES, brand_name
from recdrill.errors import ConfigError

SMALL: dict[str, Any] = {"n_items": 500, "n_users": 300, "n_events": 5_000}
# Big enough for rates and daily counts to be stable, still well under a second to generate.
MEDIUM: dict[str, Any] = {"n_items": 1_000, "n_users": 2_000, "n_events": 40_000}
HOUR = 3_600
DAY = 86_400


@pytest.fixture(scope="module")
def small_run() -> tuple[ShopSim, Dataset]:
    sim = ShopSim(**SMALL)
    return sim, sim.generate()


@pytest.fixture(scope="module")
def small_sim(small_run: tuple[ShopSim, Dataset]) -> ShopSim:
    return small_run[0]


@pytest.fixture(scope="module")
def small(small_run: tuple[ShopSim, Dataset]) -> Dataset:
    return small_run[1]


@pytest.fixture(scope="module")
def medium_run() -> tuple[ShopSim, Dataset]:
    sim = ShopSim(**MEDIUM)
    return sim, sim.generate()


@pytest.fixture(scope="module")
def medium(medium_run: tuple[ShopSim, Dataset]) -> Dataset:
    return medium_run[1]


def _same_session(data: Dataset) -> np.ndarray:
    """Mask over consecutive event pairs (i, i+1): same user, at most 15 minutes apart."""
    it = data.interactions
    gap = np.diff(it.timestamp)
    return (it.user[1:] == it.user[:-1]) & (gap >= 0) & (gap <= 900)


def _assert_same(a: Dataset, b: Dataset) -> None:
    for column in ("user", "item", "timestamp", "event", "query", "price"):
        np.testing.assert_array_equal(getattr(a.interactions, column), getattr(b.interactions, column))
    for column in ("item_ids", "title", "category", "category_parent", "brand", "price"):
        np.testing.assert_array_equal(getattr(a.catalog, column), getattr(b.catalog, column))
    assert a.catalog.attributes is not None and b.catalog.attributes is not None
    np.testing.assert_array_equal(a.catalog.attributes.values, b.catalog.attributes.values)
    assert (a.catalog.category_names, a.catalog.brand_names) == (
        b.catalog.category_names,
        b.catalog.brand_names,
    )
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    assert a.queries == b.queries
    assert a.judgements is not None and b.judgements is not None
    for column in ("query", "item", "grade"):
        np.testing.assert_array_equal(getattr(a.judgements, column), getattr(b.judgements, column))


# --- sizes, ids and the catalogue -------------------------------------------------------------------


def test_exact_sizes_and_ids(small: Dataset) -> None:
    assert (small.name, small.has_time) == ("shopsim", True)
    assert (small.n_items, small.n_users, len(small.interactions)) == (500, 300, 5_000)
    assert small.catalog.item_ids[0] == "SKU-000000" and small.catalog.item_ids[-1] == "SKU-000499"
    assert small.user_ids[0] == "U-000000" and len(set(small.user_ids)) == 300
    assert small.quality is not None and small.quality.rows_kept == 5_000
    assert small.sequences().lengths.min() >= 5


def test_category_tree(small: Dataset) -> None:
    catalog = small.catalog
    assert catalog.category_names[:8] == ("Beauty", "Toys", "Kitchen", "Garden", "Electronics", "Sports",
                                          "Fashion", "Books")  # fmt: skip
    assert catalog.category_names[8:10] == ("Makeup", "Skincare")
    assert len(catalog.category_names) == 8 + 8 * 5
    assert catalog.category_parent is not None and catalog.category is not None
    assert catalog.category_parent[:8].tolist() == [-1] * 8
    assert catalog.category_parent[8:].tolist() == np.repeat(np.arange(8), 5).tolist()
    # Items sit on leaves only, and every leaf has at least one item.
    assert np.array_equal(np.unique(catalog.category), np.arange(8, 48))
    groups = catalog.item_groups()
    assert groups is not None and groups.lengths.tolist() == [2] * 500


def test_brands_prices_and_attributes(small: Dataset) -> None:
    catalog = small.catalog
    assert catalog.brand is not None and catalog.price is not None and catalog.category_parent is not None
    assert catalog.category is not None and catalog.attributes is not None
    assert len(catalog.brand_names) == 300 and len(set(catalog.brand_names)) == 300
    top = catalog.category_parent[catalog.category]
    tops_per_brand = [len(set(top[catalog.brand == b].tolist())) for b in np.unique(catalog.brand)]
    assert min(tops_per_brand) >= 1 and max(tops_per_brand) <= 3
    assert catalog.price.min() >= 0.99
    np.testing.assert_allclose(catalog.price * 100, np.rint(catalog.price * 100), atol=1e-6)
    expected = np.stack([catalog.brand, 300 + catalog.category, 300 + top], axis=1)
    assert catalog.attributes.lengths.tolist() == [3] * 500
    np.testing.assert_array_equal(catalog.attributes.values.reshape(-1, 3), expected)


def test_prices_follow_their_category(medium: Dataset) -> None:
    catalog = medium.catalog
    assert catalog.price is not None and catalog.category_parent is not None and catalog.category is not None
    top = catalog.category_parent[catalog.category]
    median = {name: np.median(catalog.price[top == t]) for t, name in enumerate(catalog.category_names[:8])}
    assert median["Electronics"] > 2 * median["Books"]  # medians 90 and 15 before noise


def test_titles_are_brand_adjective_noun_variant(small: Dataset) -> None:
    catalog = small.catalog
    assert catalog.brand is not None and catalog.category is not None and catalog.title is not None
    leaf_nouns = [nouns for top in TOP_CATEGORIES[:8] for _, nouns in top.leaves[:5]]
    for item in range(0, 500, 7):
        title, brand = str(catalog.title[item]), catalog.brand_names[catalog.brand[item]]
        top = TOP_CATEGORIES[(catalog.category[item] - 8) // 5]
        assert title.startswith(brand + " ")
        adjective = title.split()[1]
        assert adjective in top.adjectives
        assert any(f" {adjective} {noun} " in title for noun in leaf_nouns[catalog.category[item] - 8])
        assert any(title.endswith(" " + variant) for variant in top.variants)


def test_vocabulary_keeps_the_properties_judgements_rely_on() -> None:
    nouns = [noun.lower() for top in TOP_CATEGORIES for _, leaf in top.leaves for noun in leaf]
    assert len(nouns) == len(set(nouns))
    for top in TOP_CATEGORIES:
        assert all(" " not in adjective for adjective in top.adjectives)
        for _, leaf in top.leaves:
            words = [set(noun.lower().split()) for noun in leaf]
            assert not any(
                a < b or a == b for i, a in enumerate(words) for j, b in enumerate(words) if i != j
            )
    brands = {brand_name(code).lower() for code in range(MAX_BRANDS)}
    vocabulary = {w.lower() for top in TOP_CATEGORIES for w in top.adjectives} | set(nouns)
    assert len(brands) == MAX_BRANDS and not brands & vocabulary


# --- determinism and the golden shop ----------------------------------------------------------------


def test_same_seed_gives_identical_shop(small: Dataset) -> None:
    _assert_same(small, ShopSim(ShopSimConfig(**SMALL)).generate())


def test_different_seed_gives_different_shop(small: Dataset) -> None:
    other = ShopSim(**SMALL, seed=1).generate()
    assert other.catalog.title is not None and small.catalog.title is not None
    assert np.mean(other.catalog.title != small.catalog.title) > 0.9
    assert np.mean(other.interactions.item != small.interactions.item) > 0.9
    assert not np.array_equal(other.interactions.timestamp, small.interactions.timestamp)


def test_golden_values_seed_0(small: Dataset) -> None:
    # Pinned on purpose: a change here means every shop of every user changed. Update deliberately.
    assert small.catalog.title is not None
    assert small.catalog.title[:2].tolist() == [
        "Zileen Compact Speaker 64GB",
        "Porion Bestselling Astronomy Guide Large Print",
    ]
    assert np.bincount(small.interactions.event, minlength=4).tolist() == [3823, 819, 226, 132]


# --- users and time ---------------------------------------------------------------------------------


def test_every_user_has_at_least_five_events_and_activity_is_heavy_tailed(medium: Dataset) -> None:
    lengths = medium.sequences().lengths
    assert lengths.sum() == 40_000 and lengths.min() >= 5
    assert lengths.max() > 5 * np.median(lengths)


def test_timestamps_stay_on_the_timeline_and_follow_a_daily_cycle(medium: Dataset) -> None:
    ts = medium.interactions.timestamp
    assert ts.min() >= START_DATE and ts.max() < START_DATE + 30 * DAY + 2 * HOUR
    by_hour = np.bincount((ts // HOUR) % 24, minlength=24)
    assert by_hour[20] > 10 * by_hour[4]
    assert by_hour.argmax() in (19, 20, 21) and by_hour.argmin() in (2, 3, 4, 5)


def test_weekends_are_busier_than_early_weekdays(medium: Dataset) -> None:
    per_day = np.bincount((medium.interactions.timestamp - START_DATE) // DAY)[:30]
    weekday = (START_DATE // DAY + np.arange(30) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    normal = np.arange(30) != 24  # leave the promotion day out
    mean = np.array([per_day[normal & (weekday == w)].mean() for w in range(7)])
    assert mean[5:].mean() > 1.1 * mean[:2].mean()


def test_promotion_day_surges(medium: Dataset) -> None:
    per_day = np.bincount((medium.interactions.timestamp - START_DATE) // DAY)[:30]
    ratio = per_day[24] / np.median(per_day)
    # Day 24 (2026-10-25) is a Sunday, weighted 1.2: about 5 * 1.2 = 6 times a median day.
    assert 4.0 < ratio < 8.0 and per_day.argmax() == 24


def test_no_promotion_day_means_no_surge() -> None:
    data = ShopSim(**MEDIUM, promotion_day=None).generate()
    per_day = np.bincount((data.interactions.timestamp - START_DATE) // DAY)[:30]
    assert per_day.max() < 1.6 * np.median(per_day)


def test_events_of_a_session_are_seconds_to_minutes_apart(medium: Dataset) -> None:
    it = medium.interactions
    gap = np.diff(it.timestamp)[it.user[1:] == it.user[:-1]]
    within = gap[(gap >= 0) & (gap <= 900)]
    assert len(within) > 0.6 * len(gap)
    assert 10 <= np.median(within) <= 300


# --- behaviour --------------------------------------------------------------------------------------


def test_consecutive_items_share_leaf_and_brand_far_more_than_chance(
    medium: Dataset, small_sim: ShopSim
) -> None:
    it, catalog = medium.interactions, medium.catalog
    assert catalog.category is not None and catalog.brand is not None
    pairs = _same_session(medium)
    leaf = catalog.category[it.item]
    same_leaf = np.mean((leaf[1:] == leaf[:-1])[pairs])
    # Chance baseline: the same user's events in random order (their taste alone).
    shuffled = np.empty_like(leaf)
    rng = np.random.default_rng(0)
    for user in range(0, medium.n_users, 10):
        rows = np.flatnonzero(it.user == user)
        shuffled[rows] = leaf[rng.permutation(rows)]
    sampled = np.isin(it.user[1:], np.arange(0, medium.n_users, 10)) & (it.user[1:] == it.user[:-1])
    chance = np.mean(shuffled[1:][sampled] == leaf[:-1][sampled])
    assert same_leaf > 0.85 and same_leaf > 1.5 * chance
    brand = catalog.brand[it.item]
    brand_chance = np.mean(brand[1:] == brand[np.random.default_rng(1).permutation(len(brand))][:-1])
    assert np.mean((brand[1:] == brand[:-1])[pairs]) > 5 * brand_chance


def test_next_item_is_often_a_precomputed_neighbour(small_sim: ShopSim, small: Dataset) -> None:
    it = small.interactions
    pairs = _same_session(small)
    neighbours = small_sim.truth_.neighbours
    assert neighbours.shape == (500, 8)
    is_neighbour = (neighbours[it.item[:-1]] == it.item[1:, None]).any(axis=1)
    assert np.mean(is_neighbour[pairs]) > 0.45


def test_funnel_rates_and_fit(medium_run: tuple[ShopSim, Dataset]) -> None:
    sim, data = medium_run
    view, click, cart, purchase = np.bincount(data.interactions.event, minlength=4) / len(data.interactions)
    assert view > click > cart > purchase > 0.01
    # Purchases go to items that fit: high-quality items convert several times more often.
    quality = sim.truth_.item_quality[data.interactions.item]
    low, high = np.quantile(quality, [0.25, 0.75])
    bought = data.interactions.event == EventType.PURCHASE
    assert bought[quality > high].mean() > 4 * bought[quality < low].mean()


def test_popular_items_get_more_events(medium_run: tuple[ShopSim, Dataset]) -> None:
    sim, data = medium_run
    assert data.catalog.category is not None
    # Compare items with their own leaf's average, as leaves differ in how much users like them.
    leaf = data.catalog.category - 8
    counts = data.item_counts().astype(float)
    relative = counts / (np.bincount(leaf, counts) / np.bincount(leaf))[leaf]
    popularity = sim.truth_.item_popularity
    low, high = np.quantile(popularity, [0.25, 0.75])
    assert relative[popularity > high].mean() > 2.5 * relative[popularity < low].mean()


# --- search -----------------------------------------------------------------------------------------


def test_search_share_and_queries(medium: Dataset) -> None:
    query = medium.interactions.query
    assert query is not None
    assert 0.25 < np.mean(query >= 0) < 0.35
    assert len(set(medium.queries)) == len(medium.queries) and list(medium.queries) == sorted(medium.queries)
    assert np.array_equal(np.unique(query[query >= 0]), np.arange(len(medium.queries)))
    assert all(re.fullmatch(r"[a-z0-9'&.+ -]+", q) for q in medium.queries)


@pytest.mark.parametrize(("share", "expected"), [(0.0, 0.0), (1.0, 1.0)])
def test_search_share_extremes(share: float, expected: float) -> None:
    data = ShopSim(**SMALL, search_share=share).generate()
    assert data.interactions.query is not None and data.judgements is not None
    assert np.mean(data.interactions.query >= 0) == expected
    assert (len(data.queries) == 0) == (share == 0.0) and (len(data.judgements) == 0) == (share == 0.0)


def test_judgements_follow_the_documented_rule(small: Dataset) -> None:
    judgements, catalog = small.judgements, small.catalog
    assert judgements is not None and catalog.title is not None and catalog.category is not None
    assert catalog.category_parent is not None
    words = [set(str(t).lower().split()) for t in catalog.title]
    top = catalog.category_parent[catalog.category]
    for q, text in enumerate(small.queries):
        rows = judgements.query == q
        items, grades = judgements.item[rows], judgements.grade[rows]
        exact = items[grades == Relevance.EXACT]
        assert len(exact) >= 1, text
        leaves = np.unique(catalog.category[exact])
        assert len(leaves) == 1, text
        # EXACT = same leaf and the title holds every query word; all such items are judged.
        wanted = set(text.split())
        in_leaf = np.flatnonzero(catalog.category == leaves[0])
        expected = [i for i in in_leaf if wanted <= words[i]]
        assert sorted(exact.tolist()) == expected, text
        partial = items[grades == Relevance.PARTIAL]
        assert len(partial) <= 20 and np.all(catalog.category[partial] == leaves[0])
        assert not any(wanted <= words[i] for i in partial)
        irrelevant = items[grades == Relevance.IRRELEVANT]
        assert 1 <= len(irrelevant) <= 20 and np.all(top[irrelevant] != top[exact[0]])
    order = np.lexsort((judgements.item, judgements.query))
    assert np.array_equal(order, np.arange(len(judgements)))


def test_search_sessions_start_on_an_exact_item(small: Dataset) -> None:
    it, judgements = small.interactions, small.judgements
    assert it.query is not None and judgements is not None
    exact = set(zip(judgements.query[judgements.grade == Relevance.EXACT].tolist(),
                    judgements.item[judgements.grade == Relevance.EXACT].tolist(), strict=True))  # fmt: skip
    searched = np.flatnonzero(it.query >= 0)
    hits = [(int(it.query[e]), int(it.item[e])) in exact for e in searched]
    assert np.mean(hits) > 0.3


# --- drift ------------------------------------------------------------------------------------------


def test_no_drift_by_default(small_sim: ShopSim, small: Dataset) -> None:
    assert not small_sim.config.drift.is_active
    assert len(small_sim.truth_.new_items) == 0
    assert small.catalog.price is not None and small.interactions.price is not None
    np.testing.assert_array_equal(small.interactions.price, small.catalog.price[small.interactions.item])


def test_new_items_appear_only_after_the_drift_time() -> None:
    sim = ShopSim(**MEDIUM, drift=DriftConfig(new_items=0.2))
    data = sim.generate()
    truth = sim.truth_
    assert len(truth.new_items) == 200
    assert truth.drift_time == START_DATE + int(0.8 * 30 * DAY)
    it = data.interactions
    is_new = np.isin(it.item, truth.new_items)
    assert not np.any(is_new & (it.timestamp < truth.drift_time))
    after = it.timestamp >= truth.drift_time
    assert is_new[after].mean() > 0.1 and len(np.unique(it.item[is_new])) > 150


def test_price_shock_changes_prices_only_in_shocked_categories_after_drift() -> None:
    base = ShopSim(**MEDIUM).generate()
    sim = ShopSim(**MEDIUM, drift=DriftConfig(price_shock=2.0, price_shock_share=0.25))
    shocked = sim.generate()
    # The shock changes prices and purchases, nothing else: same items at the same times.
    for column in ("user", "item", "timestamp", "query"):
        np.testing.assert_array_equal(
            getattr(base.interactions, column), getattr(shocked.interactions, column)
        )
    np.testing.assert_array_equal(base.catalog.price, shocked.catalog.price)
    truth = sim.truth_
    assert len(truth.shocked_categories) == 10 and np.all(truth.shocked_categories >= 8)
    it = shocked.interactions
    assert (
        base.interactions.price is not None and it.price is not None and shocked.catalog.category is not None
    )
    in_shock = np.isin(shocked.catalog.category[it.item], truth.shocked_categories) & (
        it.timestamp >= truth.drift_time
    )
    assert in_shock.sum() > 1_000
    np.testing.assert_allclose(it.price[in_shock], 2.0 * base.interactions.price[in_shock], atol=0.005)
    np.testing.assert_array_equal(it.price[~in_shock], base.interactions.price[~in_shock])
    bought = it.event == EventType.PURCHASE
    assert bought[in_shock].mean() < 0.85 * (base.interactions.event == EventType.PURCHASE)[in_shock].mean()


def _category_shift(data: Dataset, at: int) -> float:
    """Total variation distance between the leaf mix before and after ``at``."""
    it = data.interactions
    assert data.catalog.category is not None
    leaf = data.catalog.category[it.item]
    before = np.bincount(leaf[it.timestamp < at], minlength=48)
    after = np.bincount(leaf[it.timestamp >= at], minlength=48)
    return float(0.5 * np.abs(before / before.sum() - after / after.sum()).sum())


def test_taste_shift_moves_the_category_mix_after_drift_only() -> None:
    sim = ShopSim(**MEDIUM, drift=DriftConfig(taste_shift=1.0))
    shifted, still = sim.generate(), ShopSim(**MEDIUM).generate()
    at = sim.truth_.drift_time
    before = still.interactions.timestamp < at
    np.testing.assert_array_equal(shifted.interactions.timestamp < at, before)
    for column in ("user", "item", "timestamp", "event", "price"):
        np.testing.assert_array_equal(
            getattr(shifted.interactions, column)[before], getattr(still.interactions, column)[before]
        )
    assert _category_shift(shifted, at) > 0.15
    assert _category_shift(shifted, at) > 3 * _category_shift(still, at)


# --- configuration ----------------------------------------------------------------------------------


def test_overrides_build_a_config() -> None:
    sim = ShopSim(ShopSimConfig(n_items=500), n_users=300, n_events=5_000, seed=3)
    assert (sim.config.n_items, sim.config.n_users, sim.config.seed) == (500, 300, 3)
    with pytest.raises(AttributeError, match="call generate"):
        _ = sim.truth_


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_items": -3}, "ShopSimConfig.n_items must be a positive integer, got -3"),
        ({"n_items": True}, "ShopSimConfig.n_items must be a positive integer, got True"),
        ({"n_items": 10}, "ShopSimConfig.n_items must be at least one per leaf category (40), got 10"),
        ({"n_users": 0}, "ShopSimConfig.n_users must be a positive integer, got 0"),
        ({"n_events": 1_000}, "ShopSimConfig.n_events must be at least 5 * n_users = 100000, got 1000"),
        ({"n_top_categories": 13}, "ShopSimConfig.n_top_categories must be an integer in [1, 12], got 13"),
        ({"n_subcategories": 0}, "ShopSimConfig.n_subcategories must be an integer in [1, 6], got 0"),
        ({"n_brands": 4}, "ShopSimConfig.n_brands must be at least n_top_categories (8), got 4"),
        ({"n_brands": 5_000}, "ShopSimConfig.n_brands must be an integer in [1, 3600], got 5000"),
        ({"days": 2.5}, "ShopSimConfig.days must be a positive integer, got 2.5"),
        ({"start_date": -1}, "ShopSimConfig.start_date must be a non-negative integer"),
        ({"promotion_day": 30}, "ShopSimConfig.promotion_day must be None or a day index in [0, 30), got 30"),
        ({"promotion_surge": 0.5}, "ShopSimConfig.promotion_surge must be a number >= 1, got 0.5"),
        ({"search_share": 1.5}, "ShopSimConfig.search_share must be a number in [0, 1], got 1.5"),
        ({"search_share": float("nan")}, "ShopSimConfig.search_share must be a number in [0, 1], got nan"),
        ({"seed": -1}, "ShopSimConfig.seed must be a non-negative integer, got -1"),
        ({"drift": {"new_items": 0.1}}, "ShopSimConfig.drift must be a DriftConfig, got {'new_items': 0.1}"),
        ({"colour": "red"}, "ShopSim got an unknown option 'colour'"),
    ],
)
def test_bad_config_names_the_field_and_value(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ShopSim(**overrides)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("start", 1.0, "a number strictly between 0 and 1"),
        ("new_items", 1.0, "a number in [0, 1)"),
        ("price_shock", 0.0, "a positive number"),
        ("price_shock_share", -0.1, "a number in [0, 1]"),
        ("taste_shift", 2, "a number in [0, 1]"),
    ],
)
def test_bad_drift_config_names_the_field_and_value(field: str, value: float, expected: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"DriftConfig.{field} must be {expected}, got {value!r}")
    ):
        DriftConfig(**{field: value})
