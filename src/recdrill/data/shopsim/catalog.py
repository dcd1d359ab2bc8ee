"""The synthetic shop's catalogue: category tree, brands, prices, titles and item neighbours.

Items are spread over leaf categories (every leaf gets at least one). Each brand sells in one to
three top categories and carries a price premium; prices are lognormal around a per-leaf level and
rounded to cents. Titles read ``"{brand} {adjective} {noun} {variant}"`` with the noun taken from the
item's leaf, e.g. ``"Lumora Matte Lipstick 30ml"``. Items also get a latent popularity (how often
they are looked at) and quality (how often a look turns into a purchase).

Example:
    >>> import numpy as np
    >>> from recdrill.data.shopsim.config import ShopSimConfig
    >>> shop = build_catalog(ShopSimConfig(n_items=100, n_brands=20), np.random.default_rng(0))
    >>> shop.catalog.n_items, len(shop.catalog.category_names), shop.catalog.item_ids[0]
    (100, 48, 'SKU-000000')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdrill.data.dataset import Catalog
from recdrill.data.ragged import Ragged
from recdrill.data.shopsim.config import ShopSimConfig
from recdrill.data.shopsim.vocab import MAX_BRANDS, TOP_CATEGORIES, brand_name

MIN_PRICE = 0.99
LEAF_PRICE_SPREAD = 0.35  # sd of a leaf's log price level around its top category's median
BRAND_PREMIUM_SPREAD = 0.25  # sd of a brand's log price premium
ITEM_PRICE_SPREAD = 0.4  # sd of an item's log price around its leaf and brand level
POPULARITY_SPREAD = 1.1  # sd of latent log popularity: a long tail of rarely seen items
MAX_BRAND_CATEGORIES = 3


@dataclass(frozen=True)
class ShopCatalog:
    """The public :class:`Catalog` plus the columns the simulator needs to drive behaviour.

    Attributes:
        catalog: item ids, titles, category tree, brands, prices and attribute tags.
        n_top: number of top categories; category index ``n_top + leaf`` is leaf ``leaf``.
        leaf: leaf index in ``[0, n_leaves)`` per item.
        leaf_top: top category of each leaf.
        noun, adjective: word ids per item, indexing ``noun_names``/``adjective_names``.
        noun_names, adjective_names: the words, as they appear in titles.
        popularity: latent log popularity per item (drives how often it is looked at).
        quality: latent quality per item (drives conversion).
        log_price_centred: log price minus the mean log price of the item's leaf.
    """

    catalog: Catalog
    n_top: int
    leaf: np.ndarray
    leaf_top: np.ndarray
    noun: np.ndarray
    adjective: np.ndarray
    noun_names: tuple[str, ...]
    adjective_names: tuple[str, ...]
    popularity: np.ndarray
    quality: np.ndarray
    log_price_centred: np.ndarray

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_top)

    @property
    def top(self) -> np.ndarray:
        """Top category per item."""
        top: np.ndarray = self.leaf_top[self.leaf]
        return top

    @property
    def brand(self) -> np.ndarray:
        brand = self.catalog.brand
        if brand is None:  # always set by build_catalog; narrows the Optional for type checkers
            raise RuntimeError("ShopCatalog.catalog has no brand column")
        return brand

    @property
    def price(self) -> np.ndarray:
        price = self.catalog.price
        if price is None:
            raise RuntimeError("ShopCatalog.catalog has no price column")
        return price


def build_catalog(config: ShopSimConfig, rng: np.random.Generator) -> ShopCatalog:
    """Draw a catalogue of ``config.n_items`` items from ``rng``.

    Example:
        >>> from recdrill.data.shopsim.config import ShopSimConfig
        >>> shop = build_catalog(ShopSimConfig(n_items=50, n_top_categories=2, n_brands=4),
        ...                      np.random.default_rng(1))
        >>> shop.catalog.category_names[:3], shop.catalog.category_parent[:3].tolist()
        (('Beauty', 'Toys', 'Makeup'), [-1, -1, 0])
    """
    tops = TOP_CATEGORIES[: config.n_top_categories]
    n_top, n_sub = config.n_top_categories, config.n_subcategories
    leaf_top = np.repeat(np.arange(n_top), n_sub)
    leaf_names = tuple(name for top in tops for name, _ in top.leaves[:n_sub])
    category_names = tuple(top.name for top in tops) + leaf_names
    category_parent = np.concatenate([np.full(n_top, -1), leaf_top]).astype(np.int64)

    leaf = _draw_leaves(config.n_items, len(leaf_top), rng)
    brand_names, brand_premium, brand = _draw_brands(config, leaf_top[leaf], rng)
    noun, noun_names = _draw_words(leaf, [nouns for top in tops for _, nouns in top.leaves[:n_sub]], rng)
    adjective, adjective_names = _draw_words(leaf_top[leaf], [top.adjectives for top in tops], rng)
    variant, variant_names = _draw_words(leaf_top[leaf], [top.variants for top in tops], rng)

    leaf_level = np.log([top.median_price for top in tops])[leaf_top] + rng.normal(
        0.0, LEAF_PRICE_SPREAD, len(leaf_top)
    )
    log_price = leaf_level[leaf] + brand_premium[brand] + rng.normal(0.0, ITEM_PRICE_SPREAD, len(leaf))
    price = np.round(np.maximum(np.exp(log_price), MIN_PRICE), 2)
    popularity = rng.normal(0.0, POPULARITY_SPREAD, len(leaf))
    # Quality is partly what makes an item popular, and premium brands are a little better.
    quality = 0.5 * popularity / POPULARITY_SPREAD + 0.8 * rng.normal(size=len(leaf)) + brand_premium[brand]

    # Strings are joined as object arrays so no Python loop runs per item.
    parts = ((brand_names, brand), (adjective_names, adjective), (noun_names, noun), (variant_names, variant))
    words = [_as_objects(names)[ids] for names, ids in parts]
    title = words[0] + " " + words[1] + " " + words[2] + " " + words[3]
    n_brands, category = len(brand_names), n_top + leaf
    # Attribute tags: the brand id, then category ids shifted past the brand ids so the two never collide.
    tags = np.stack([brand, n_brands + category, n_brands + leaf_top[leaf]], axis=1)
    catalog = Catalog(
        item_ids=numbered_ids("SKU-", len(leaf)),
        title=title,
        category=category,
        category_names=category_names,
        category_parent=category_parent,
        brand=brand,
        brand_names=brand_names,
        price=price,
        attributes=Ragged(
            np.arange(0, tags.size + 1, tags.shape[1], dtype=np.int64), tags.ravel().astype(np.int32)
        ),
    )
    # Centre on the leaf's mean of the rounded prices users actually see.
    shown = np.log(price)
    leaf_mean = np.bincount(leaf, shown, len(leaf_top)) / np.bincount(leaf, minlength=len(leaf_top))
    return ShopCatalog(catalog, n_top, leaf, leaf_top, noun, adjective, noun_names, adjective_names,
                       popularity, quality, shown - leaf_mean[leaf])  # fmt: skip


def neighbour_table(shop: ShopCatalog, available: np.ndarray, k: int) -> np.ndarray:
    """``[n_items, k]`` close neighbours of every available item, nearest first.

    Neighbours are the items next to it when the available items of its leaf are ordered by
    (brand, price): the same leaf always, very often the same brand, and a similar price. The order
    wraps around within the leaf, so a leaf with ``k`` or fewer available items repeats items (and a
    single-item leaf points at itself). Rows of unavailable items point at themselves.
    """
    items = np.flatnonzero(available)
    order = items[np.lexsort((shop.price[items], shop.brand[items], shop.leaf[items]))]
    leaf = shop.leaf[order]
    counts = np.bincount(leaf, minlength=shop.n_leaves)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[leaf]
    rank, size = np.arange(len(order)) - starts, counts[leaf]
    steps = np.arange(1, k // 2 + 2)
    offsets = np.stack([steps, -steps], axis=1).ravel()[:k]  # +1, -1, +2, -2, ...
    table = np.repeat(np.arange(shop.catalog.n_items, dtype=np.int64)[:, None], k, axis=1)
    table[order] = order[starts[:, None] + (rank[:, None] + offsets[None, :]) % size[:, None]]
    return table


def numbered_ids(prefix: str, n: int) -> np.ndarray:
    """``prefix`` + zero-padded row number (at least 6 digits), as an object array.

    Example:
        >>> numbered_ids("SKU-", 3).tolist()
        ['SKU-000000', 'SKU-000001', 'SKU-000002']
    """
    width = max(6, len(str(n - 1)))
    ids: np.ndarray = np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)
    return ids


def _draw_leaves(n_items: int, n_leaves: int, rng: np.random.Generator) -> np.ndarray:
    """Leaf of every item: one item per leaf, the rest spread by uneven leaf sizes, then shuffled."""
    size_weight = rng.gamma(2.0, size=n_leaves)
    sizes = 1 + rng.multinomial(n_items - n_leaves, size_weight / size_weight.sum())
    return rng.permutation(np.repeat(np.arange(n_leaves, dtype=np.int64), sizes))


def _draw_brands(
    config: ShopSimConfig, item_top: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Brand names, log price premium per brand and brand per item.

    Each brand sells in one to three top categories; the first is dealt round-robin so every top
    category has at least one brand. Within a top category, brands differ in size (lognormal).
    """
    n_brands, n_top = config.n_brands, config.n_top_categories
    codes = rng.choice(MAX_BRANDS, size=n_brands, replace=False)
    names = tuple(brand_name(int(code)) for code in codes)
    premium = rng.normal(0.0, BRAND_PREMIUM_SPREAD, n_brands)
    size = rng.lognormal(0.0, 1.0, n_brands)

    primary = rng.permutation(np.arange(n_brands) % n_top)
    n_extra = rng.choice(MAX_BRAND_CATEGORIES, size=n_brands, p=[0.5, 0.3, 0.2])
    score = rng.random((n_brands, n_top))
    score[np.arange(n_brands), primary] = -1.0  # the primary category sorts first
    width = min(MAX_BRAND_CATEGORIES, n_top)
    ranked = np.argsort(score, axis=1)[:, :width]
    chosen = np.arange(width)[None, :] <= n_extra[:, None]
    sells_in = np.zeros((n_brands, n_top), dtype=bool)
    sells_in[np.nonzero(chosen)[0], ranked[chosen]] = True

    brand = np.empty(len(item_top), dtype=np.int64)
    for top in range(n_top):  # one draw per top category (at most 12), not per item
        sellers = np.flatnonzero(sells_in[:, top])
        items = np.flatnonzero(item_top == top)
        brand[items] = rng.choice(sellers, size=len(items), p=size[sellers] / size[sellers].sum())
    return names, premium, brand


def _draw_words(
    group: np.ndarray, vocab: list[tuple[str, ...]], rng: np.random.Generator
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A uniform word from ``vocab[group[i]]`` for every item: global word ids and the flat word list."""
    counts = np.array([len(words) for words in vocab])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ids = starts[group] + (rng.random(len(group)) * counts[group]).astype(np.int64)
    return ids, tuple(word for words in vocab for word in words)


def _as_objects(words: tuple[str, ...]) -> np.ndarray:
    out = np.empty(len(words), dtype=object)
    out[:] = words
    return out
